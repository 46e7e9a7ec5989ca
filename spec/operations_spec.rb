# frozen_string_literal: true

# bosh int of the shared cf-deployment v58 with our ops files, alone and with cf-deployment's
# bosh-lite.yml and scale-to-one-az.yml, asserting the resulting paths.
RSpec.describe 'operations/ on cf-deployment' do
  include ManifestLookup

  let(:use_release) { Interpolation.ours('operations/use-app-ssh-release.yml') }
  let(:use_release_lite) { Interpolation.ours('operations/use-app-ssh-release-bosh-lite.yml') }
  let(:enable) { Interpolation.ours('operations/enable-app-ssh.yml') }
  let(:disable) { Interpolation.ours('operations/disable-app-ssh.yml') }
  let(:bosh_lite) { Interpolation.cf('operations/bosh-lite.yml') }
  let(:one_az) { Interpolation.cf('operations/scale-to-one-az.yml') }

  def int(*ops)
    result = Interpolation.cf_deployment(ops)
    expect(result.success).to be(true), "bosh int #{ops.map { |o| File.basename(o) }.join(' ')} failed:\n#{result.output}"
    result.manifest
  end

  def vars_of(ops)
    variables = Interpolation.variables(ops)
    ->(name) { variables.find { |v| v['name'] == name } }
  end

  def expect_switched(ops, base_ops, group_name)
    manifest = int(*ops)
    baseline = int(*base_ops)
    expect(release(manifest, 'app-ssh')).to eq('name' => 'app-ssh', 'version' => 'latest')
    expect(release(manifest, 'diego')).to eq(release(baseline, 'diego'))

    proxy = job(manifest, group_name, 'ssh_proxy')
    expect(proxy['release']).to eq('app-ssh')
    expect(jobs_named(manifest, 'ssh_proxy').map(&:first)).to eq([group_name])

    # Properties untouched; only the fingerprint for the ssh_proxy link is added.
    before = job(baseline, group_name, 'ssh_proxy')['properties']
    after = Marshal.load(Marshal.dump(proxy['properties']))
    fingerprint = after['diego']['ssh_proxy'].delete('host_key_fingerprint')
    expect(after).to eq(before)
    expect(fingerprint).to eq(ManifestLookup.dig(job(baseline, 'api', 'cloud_controller_ng')['properties'], 'app_ssh.host_key_fingerprint'))

    # The BBS stays at cf-deployment's all-instances alias (the property default): no bbs link,
    # whose address BOSH DNS health-filters, and the bbs job is left as it was.
    expect(proxy['consumes']).to eq('bbs' => 'nil', 'uaa' => { 'from' => 'app_ssh_uaa' })
    expect(ManifestLookup.dig(proxy['properties'], 'diego.ssh_proxy.bbs.api_location')).to be_nil
    expect(job(manifest, 'diego-api', 'bbs')).to eq(job(baseline, 'diego-api', 'bbs'))
    expect(job(manifest, 'uaa', 'uaa')['custom_provider_definitions'])
      .to eq([{ 'name' => 'app_ssh_uaa', 'type' => 'uaa', 'properties' => ['uaa.ssl.port'] }])

    # Only ssh_proxy changed release; the host-key variable is the same definition (no rotation).
    changed = placements(manifest) - placements(baseline)
    expect(changed).to eq([[group_name, 'ssh_proxy', 'app-ssh']])
    after_var = vars_of(ops).call('diego_ssh_proxy_host_key')
    expect(after_var).to eq('name' => 'diego_ssh_proxy_host_key', 'type' => 'ssh')
    expect(after_var).to eq(vars_of(base_ops).call('diego_ssh_proxy_host_key'))
    expect(proxy['properties']['diego']['ssh_proxy']['host_key'])
      .to eq(job(baseline, group_name, 'ssh_proxy')['properties']['diego']['ssh_proxy']['host_key'])
  end

  # cc.default_app_ssh_access on every Cloud Controller job that creates apps.
  CC_JOBS = [%w[api cloud_controller_ng], %w[cc-worker cloud_controller_worker], %w[scheduler cloud_controller_clock]].freeze

  def cc_defaults(manifest)
    CC_JOBS.map do |g, j|
      found = job(manifest, g, j)
      expect(found).not_to be_nil, "no #{j} on #{g}"
      ManifestLookup.dig(found['properties'], 'cc.default_app_ssh_access')
    end
  end

  def expect_enabled(ops)
    manifest = int(*ops)
    vars = Interpolation.cf_deployment(ops).vars
    cc = job(manifest, 'api', 'cloud_controller_ng')['properties']
    expect(ManifestLookup.dig(cc, 'cc.allow_app_ssh_access')).to be(true)
    expect(ManifestLookup.dig(cc, 'cc.default_app_ssh_access')).to be(true)
    expect(cc_defaults(manifest)).to eq([true, true, true])
    expect(ManifestLookup.dig(cc, 'app_ssh.host_key_fingerprint')).to eq(vars['diego_ssh_proxy_host_key']['public_key_fingerprint'])
    client = ManifestLookup.dig(job(manifest, 'uaa', 'uaa')['properties'], 'uaa.clients')['ssh-proxy']
    expect(client['authorized-grant-types']).to eq('authorization_code')
    expect(client['scopes']).to include('openid', 'cloud_controller.read', 'cloud_controller.write')
    expect(client['redirect-uri']).to eq("https://uaa.#{Interpolation::SYSTEM_DOMAIN}/login")
    expect(client['secret']).to eq(vars['uaa_clients_ssh-proxy_secret'])
    expect(vars['diego_ssh_proxy_host_key'].keys).to include('private_key', 'public_key_fingerprint')
    expect(vars['uaa_clients_ssh-proxy_secret']).to be_a(String)
  end

  def expect_disabled(ops, proxy_group)
    manifest = int(*ops)
    vars = Interpolation.cf_deployment(ops).vars
    cc = job(manifest, 'api', 'cloud_controller_ng')['properties']
    expect(ManifestLookup.dig(cc, 'cc.allow_app_ssh_access')).to be(false)
    expect(cc_defaults(manifest)).to eq([false, false, false])
    expect(ManifestLookup.dig(job(manifest, 'uaa', 'uaa')['properties'], 'uaa.clients')).not_to have_key('ssh-proxy')
    expect(vars['diego_ssh_proxy_host_key'].keys).to include('private_key', 'public_key_fingerprint')
    expect(vars['uaa_clients_ssh-proxy_secret']).to be_a(String)
    expect(job(manifest, proxy_group, 'ssh_proxy')).not_to be_nil
  end

  it 'generates every variable from an empty vars store (use-app-ssh-release + enable)' do
    result = Interpolation.seed_result
    expect(Interpolation.seed_ops).to eq([use_release, enable])
    expect(result.success).to be(true), result.output
    expect(result.vars['diego_ssh_proxy_host_key'].keys).to include('private_key', 'public_key', 'public_key_fingerprint')
    expect(result.vars['uaa_clients_ssh-proxy_secret']).to be_a(String).and satisfy { |s| s.length >= 20 }
  end

  describe 'use-app-ssh-release.yml' do
    it 'moves ssh_proxy on scheduler to app-ssh, properties and host key untouched, with link providers' do
      expect_switched([use_release], [], 'scheduler')
    end

    it 'does the same with scale-to-one-az.yml' do
      expect_switched([one_az, use_release], [one_az], 'scheduler')
    end

    it 'fails loudly when applied after bosh-lite.yml (ssh_proxy is no longer on scheduler)' do
      result = Interpolation.cf_deployment([bosh_lite, use_release])
      expect(result.success).to be(false)
      expect(result.output).to match(/ssh_proxy/)
    end

    it 'is undone silently when applied before bosh-lite.yml (the pitfall the README warns about)' do
      manifest = int(use_release, bosh_lite)
      expect(jobs_named(manifest, 'ssh_proxy').map { |g, j| [g, j['release']] }).to eq([%w[router diego]])
    end
  end

  describe 'use-app-ssh-release-bosh-lite.yml' do
    it 'moves ssh_proxy on router to app-ssh after bosh-lite.yml' do
      expect_switched([bosh_lite, use_release_lite], [bosh_lite], 'router')
    end

    it 'does the same with scale-to-one-az.yml' do
      expect_switched([bosh_lite, one_az, use_release_lite], [bosh_lite, one_az], 'router')
    end

    it 'fails without bosh-lite.yml (ssh_proxy is not on router)' do
      expect(Interpolation.cf_deployment([use_release_lite]).success).to be(false)
    end
  end

  describe 'enable-app-ssh.yml' do
    it 'turns SSH on in Cloud Controller and UAA' do
      expect_enabled([enable])
    end

    it 'does the same with bosh-lite.yml, with scale-to-one-az.yml, and with the release switch' do
      expect_enabled([bosh_lite, enable])
      expect_enabled([one_az, enable])
      expect_enabled([use_release, enable])
    end

    it 'changes nothing in cf-deployment except making the CC flags explicit' do
      on = int(enable)
      base = int
      CC_JOBS.each do |g, j|
        cc_on = job(on, g, j)['properties']['cc']
        expect(cc_on.reject { |k, _| %w[allow_app_ssh_access default_app_ssh_access].include?(k) })
          .to eq(job(base, g, j)['properties']['cc'])
      end
      expect(job(on, 'uaa', 'uaa')).to eq(job(base, 'uaa', 'uaa'))
      expect(Interpolation.variables([enable])).to eq(Interpolation.variables([]))
    end
  end

  describe 'disable-app-ssh.yml' do
    it 'turns SSH off in Cloud Controller and removes the UAA client, keeping keys' do
      expect_disabled([disable], 'scheduler')
    end

    it 'says what the operator must do about the client UAA keeps' do
      header = File.read(disable).lines.take_while { |l| l.start_with?('#', '---') }.join
      expect(header).to include('uaac client delete ssh-proxy').and include('does NOT delete')
    end

    it 'does the same with bosh-lite.yml, with scale-to-one-az.yml, and with the release switch' do
      expect_disabled([bosh_lite, disable], 'router')
      expect_disabled([one_az, disable], 'scheduler')
      expect_disabled([bosh_lite, one_az, use_release_lite, disable], 'router')
    end
  end

  it 'operations/README.md names every ops file and the bosh-lite order' do
    readme = File.read(File.join(REPO_ROOT, 'operations', 'README.md'))
    Dir[File.join(REPO_ROOT, 'operations', '*.yml')].each { |path| expect(readme).to include(File.basename(path)) }
    expect(readme).to match(/-o operations\/bosh-lite.yml.*\n(.*\n)*.*use-app-ssh-release-bosh-lite.yml/)
  end

  describe 'header comments' do
    Dir[File.join(REPO_ROOT, 'operations', '*.yml')].each do |path|
      it "#{File.basename(path)} says what it does, needs and goes with" do
        header = File.read(path).lines.take_while { |l| l.start_with?('#', '---') }.join
        expect(header).to include('What it does:').and include('What it needs:').and include('Apply with:')
      end
    end
  end
end

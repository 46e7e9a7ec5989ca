# frozen_string_literal: true

# The ssh_proxy and sshd properties that come out of `bosh int` (cf-deployment with our ops
# files, and the standalone manifest) render through the job templates into configs that the
# binaries accept: bin/ssh-proxy -check-config and bin/sshd -check-config exit 0.
RSpec.describe 'rendered deployments pass -check-config' do
  include ManifestLookup

  # Spec defaults of the provider jobs, for link properties a manifest leaves unset
  # (diego-release jobs/bbs/spec, uaa-release jobs/uaa/spec, capi-release
  # jobs/cloud_controller_ng/spec).
  PROVIDER_DEFAULTS = {
    'diego.bbs.listen_addr' => '0.0.0.0:8889',
    'uaa.ssl.port' => 8443,
    'cc.internal_service_hostname' => 'cloud-controller-ng.service.cf.internal',
    'cc.public_tls.port' => 9024
  }.freeze

  let(:ops) { Interpolation.seed_ops }
  let(:bosh_lite_ops) do
    [Interpolation.cf('operations/bosh-lite.yml'), Interpolation.ours('operations/use-app-ssh-release-bosh-lite.yml'),
     Interpolation.ours('operations/enable-app-ssh.yml')]
  end

  around do |example|
    Dir.mktmpdir('render') do |dir|
      @dir = dir
      example.run
    end
  end

  def interpolated(ops)
    result = Interpolation.cf_deployment(ops)
    expect(result.success).to be(true), result.output
    result.manifest
  end

  # What the director would hand the template as a link: instances of the providing group,
  # its BOSH DNS group address, and the listed properties from the provider's manifest
  # properties or its spec default.
  def link_from(manifest, name:, type:, group_name:, job_name:, properties:)
    grp = group(manifest, group_name)
    provider = job(manifest, group_name, job_name)
    expect(provider).not_to be_nil, "no #{job_name} job in #{group_name}"
    props = {}
    properties.each do |prop|
      value = ManifestLookup.dig(provider['properties'] || {}, prop)
      value = PROVIDER_DEFAULTS[prop] if value.nil?
      PropertyStore.store(props, prop, value) unless value.nil?
    end
    azs = grp['azs'] || ['z1']
    instances = Array.new(grp['instances']) do |i|
      T::LinkInstance.new(name: group_name, index: i, id: "#{group_name}-id-#{i}", az: azs[i % azs.size],
                          address: "#{group_name}-id-#{i}.#{group_name}.default.#{manifest['name']}.bosh", bootstrap: i.zero?)
    end
    T::Link.new(name: name, type: type, instances: instances, properties: props,
                address: "q-s0.#{group_name}.default.#{manifest['name']}.bosh")
  end

  # Resolves the ssh_proxy job's links the way the use-app-ssh-release files wire them.
  def proxy_links(manifest, proxy)
    providers = {}
    manifest['instance_groups'].each do |g|
      (g['jobs'] || []).each do |j|
        (j['custom_provider_definitions'] || []).each { |d| providers[d['name']] = [g['name'], j['name'], d] }
      end
    end
    links = (proxy['consumes'] || {}).reject { |_c, how| how == 'nil' }.map do |consumer, how|
      group_name, job_name, definition = providers.fetch(how['from'])
      link_from(manifest, name: consumer, type: definition['type'], group_name: group_name, job_name: job_name,
                          properties: definition['properties'])
    end
    links << link_from(manifest, name: 'cloud_controller_https_endpoint', type: 'cloud_controller_https_endpoint',
                                 group_name: 'api', job_name: 'cloud_controller_ng',
                                 properties: %w[cc.internal_service_hostname cc.public_tls.port cc.public_tls.ca_cert])
    links
  end

  def check(binary, config_path)
    JobHelpers.run([JobHelpers.binary(binary), '-check-config', config_path])
  end

  def expect_valid(binary, config_path)
    output, status = check(binary, config_path)
    expect(status.exitstatus).to eq(0), "#{binary} -check-config #{config_path} exited #{status.exitstatus}:\n#{output}"
  end

  module PropertyStore
    module_function

    def store(hash, dotted, value)
      keys = dotted.split('.')
      last = keys.pop
      keys.reduce(hash) { |h, k| h[k] ||= {} }[last] = value
    end
  end

  shared_examples 'a cf-deployment ssh_proxy' do |group_name|
    it "renders #{group_name}'s ssh_proxy with its links into a config ssh-proxy accepts" do
      manifest = interpolated(current_ops)
      proxy = job(manifest, group_name, 'ssh_proxy')
      links = proxy_links(manifest, proxy)
      JobHelpers.render_job_to(@dir, 'ssh_proxy', proxy['properties'], consumes: links)
      config_path = File.join(@dir, 'config/ssh_proxy.yml')
      config = YAML.safe_load(File.read(config_path))

      expect(config['enable_cf_auth']).to be(true)
      # cf-deployment's all-instances alias, not a health-filtered link address.
      expect(config['bbs']).to include('address' => 'https://bbs.service.cf.internal:8889', 'server_name' => '')
      expect(config['cc']['internal_url']).to eq('https://cloud-controller-ng.service.cf.internal:9024')
      expect(config['uaa']['token_url']).to eq('https://uaa.service.cf.internal:8443/oauth/token')
      expect(config['backends_tls']['enabled']).to be(true)
      expect(File.read(File.join(@dir, 'config/certs/cc/ca.crt'))).to include('BEGIN CERTIFICATE')
      # cf-deployment's loggregator properties survive our ops files and turn app log lines on.
      expect(config['loggregator']).to include('enabled' => true, 'address' => 'localhost:3458', 'source_id' => 'ssh_proxy',
                                               'ca_cert_file' => "#{@dir}/config/certs/loggregator/ca.crt",
                                               'cert_file' => "#{@dir}/config/certs/loggregator/client.crt",
                                               'key_file' => "#{@dir}/config/certs/loggregator/client.key")
      expect(File.read(File.join(@dir, 'config/certs/loggregator/client.crt'))).to include('BEGIN CERTIFICATE')
      expect_valid('ssh-proxy', config_path)
    end

    it "renders #{group_name}'s ssh_proxy without links (as diego-release would) into a config ssh-proxy accepts" do
      proxy = job(interpolated(current_ops), group_name, 'ssh_proxy')
      JobHelpers.render_job_to(@dir, 'ssh_proxy', proxy['properties'])
      expect_valid('ssh-proxy', File.join(@dir, 'config/ssh_proxy.yml'))
    end
  end

  context 'cf-deployment + use-app-ssh-release.yml + enable-app-ssh.yml' do
    let(:current_ops) { ops }

    it_behaves_like 'a cf-deployment ssh_proxy', 'scheduler'
  end

  context 'cf-deployment + bosh-lite.yml + use-app-ssh-release-bosh-lite.yml + enable-app-ssh.yml' do
    let(:current_ops) { bosh_lite_ops }

    it_behaves_like 'a cf-deployment ssh_proxy', 'router'
  end

  it 'renders the worked policy example (operations/example-ssh-policy.yml) into a config ssh-proxy accepts' do
    manifest = interpolated(ops + [Interpolation.ours('operations/example-ssh-policy.yml')])
    expect(group(manifest, 'scheduler')['persistent_disk_type']).to eq('10GB')
    proxy = job(manifest, 'scheduler', 'ssh_proxy')
    JobHelpers.render_job_to(@dir, 'ssh_proxy', proxy['properties'])
    config_path = File.join(@dir, 'config/ssh_proxy.yml')
    config = YAML.safe_load(File.read(config_path))
    expect(config['policy']).to include('sftp' => false, 'remote_forwarding' => false, 'shell' => true, 'pty' => true,
                                        'permit_open' => ['127.0.0.1:8080', 'postgres.service.internal:5432'],
                                        'max_sessions_per_user' => 2)
    expect(config['recording']).to include('enabled' => true, 'directory' => '/var/vcap/store/ssh_proxy/recordings',
                                           'max_total_bytes' => 8192 * 1024 * 1024)
    bpm = YAML.safe_load(File.read(File.join(@dir, 'config/bpm.yml')))
    expect(bpm['processes'].first['persistent_disk']).to be(true)
    expect_valid('ssh-proxy', config_path)
  end

  it 'is a real check: ssh-proxy -check-config rejects a rendered config whose host key is not a key' do
    proxy = job(interpolated(ops), 'scheduler', 'ssh_proxy')
    props = Marshal.load(Marshal.dump(proxy['properties']))
    props['diego']['ssh_proxy']['host_key'] = 'not a key'
    JobHelpers.render_job_to(@dir, 'ssh_proxy', props)
    output, status = check('ssh-proxy', File.join(@dir, 'config/ssh_proxy.yml'))
    expect(status.exitstatus).to eq(2)
    expect(output).to include('host_key_files')
  end

  it 'is a real check: ssh-proxy -check-config names the Loggregator certificate a rendered config lacks' do
    proxy = job(interpolated(ops), 'scheduler', 'ssh_proxy')
    props = Marshal.load(Marshal.dump(proxy['properties']))
    props['loggregator'].delete('key')
    JobHelpers.render_job_to(@dir, 'ssh_proxy', props)
    output, status = check('ssh-proxy', File.join(@dir, 'config/ssh_proxy.yml'))
    expect(status.exitstatus).to eq(2)
    expect(output).to include('loggregator.key_file: must be set when loggregator.enabled is true')
  end

  { 'ssh_proxy' => 'ssh-proxy', 'sshd' => 'sshd' }.each do |job_name, binary|
    it "starts #{binary} from bpm.yml with flags the binary defines" do
      process = YAML.safe_load(JobHelpers.release.job(job_name).template('config/bpm.yml').render({}))['processes'].first
      expect(process['executable']).to eq("/var/vcap/packages/#{job_name}/bin/#{binary}")
      usage, = JobHelpers.run([JobHelpers.binary(binary), '-h'])
      flags = process['args'].select { |a| a.start_with?('-') }
      expect(flags).not_to be_empty
      flags.each { |flag| expect(usage).to match(/^\s+#{Regexp.escape(flag)}\b/) }
    end
  end

  describe 'manifests/app-ssh.yml' do
    def standalone
      result = Interpolation.standalone
      expect(result.success).to be(true), result.output
      result.manifest
    end

    it 'interpolates with a fresh vars store and --var-errs, with both instance groups and the bpm release' do
      m = standalone
      expect(m['instance_groups'].map { |g| g['name'] }).to eq(%w[ssh-proxy sshd])
      expect(placements(m)).to eq([%w[ssh-proxy bpm bpm], %w[ssh-proxy ssh_proxy app-ssh], %w[sshd bpm bpm], %w[sshd sshd app-ssh]])
      vars = Interpolation.standalone.vars
      expect(vars.keys).to include('app_ssh_proxy_host_key', 'app_ssh_sshd_host_key', 'app_ssh_diego_credentials',
                                   'app_ssh_ca', 'app_ssh_bbs_client')
    end

    # The sshd link as the director would resolve it from the sshd instance group.
    def sshd_link(manifest)
      props = job(manifest, 'sshd', 'sshd')['properties']
      spec = JobHelpers.release.job('sshd').spec
      listen = props.dig('sshd', 'listen_addr') || spec['properties']['sshd.listen_addr']['default']
      Bosh::Template::Test::Link.new(
        name: 'sshd', type: 'sshd',
        properties: { 'sshd' => { 'listen_addr' => listen, 'host_key_fingerprint' => props.dig('sshd', 'host_key_fingerprint') } },
        instances: [Bosh::Template::Test::LinkInstance.new(name: 'sshd', index: 0, address: 'sshd-0.sshd.default.app-ssh.bosh')]
      )
    end

    it "renders the ssh-proxy group's properties and the sshd link into a config ssh-proxy accepts" do
      m = standalone
      proxy = job(m, 'ssh-proxy', 'ssh_proxy')
      JobHelpers.render_job_to(@dir, 'ssh_proxy', proxy['properties'], consumes: [sshd_link(m)])
      config_path = File.join(@dir, 'config/ssh_proxy.yml')
      config = YAML.safe_load(File.read(config_path))
      expect(config).to include('enable_diego_auth' => true, 'enable_cf_auth' => false)
      expect(config['static_targets'].map { |t| [t['name'], t['instances']] }).to eq([['sshd', ['sshd-0.sshd.default.app-ssh.bosh:2222']]])
      expect_valid('ssh-proxy', config_path)
    end

    it "renders the sshd group's properties into a config sshd accepts" do
      sshd = job(standalone, 'sshd', 'sshd')
      JobHelpers.render_job_to(@dir, 'sshd', sshd['properties'])
      config_path = File.join(@dir, 'config/sshd.yml')
      expect(YAML.safe_load(File.read(config_path))['authorized_keys'].size).to eq(1)
      expect_valid('sshd', config_path)
    end

    it 'is a real check: sshd -check-config rejects a rendered config with a bad authorized key' do
      props = Marshal.load(Marshal.dump(job(standalone, 'sshd', 'sshd')['properties']))
      props['sshd']['authorized_keys'] = ['ssh-ed25519 not-base64!']
      JobHelpers.render_job_to(@dir, 'sshd', props)
      output, status = check('sshd', File.join(@dir, 'config/sshd.yml'))
      expect(status.exitstatus).to eq(2)
      expect(output).to include('authorized_keys')
    end
  end
end

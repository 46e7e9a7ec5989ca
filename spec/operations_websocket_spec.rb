# frozen_string_literal: true

require 'openssl'

# bosh int of cf-deployment v58 with enable-ssh-over-websocket.yml (and its bosh-lite twin),
# alone, with the app-ssh release and enable files, and with bosh-lite.yml: the WebSocket
# listener's properties, the route_registrar colocated with ssh_proxy, and the listener's
# certificate signed by a CA gorouter trusts for backends.
RSpec.describe 'operations/enable-ssh-over-websocket*.yml on cf-deployment' do
  include ManifestLookup

  let(:ws) { Interpolation.ours('operations/enable-ssh-over-websocket.yml') }
  let(:ws_lite) { Interpolation.ours('operations/enable-ssh-over-websocket-bosh-lite.yml') }
  let(:use_release) { Interpolation.ours('operations/use-app-ssh-release.yml') }
  let(:use_release_lite) { Interpolation.ours('operations/use-app-ssh-release-bosh-lite.yml') }
  let(:enable) { Interpolation.ours('operations/enable-app-ssh.yml') }
  let(:bosh_lite) { Interpolation.cf('operations/bosh-lite.yml') }
  let(:one_az) { Interpolation.cf('operations/scale-to-one-az.yml') }
  let(:cidrs) { ['10.0.16.0/20', '10.0.32.0/20'] }
  let(:host) { "ssh.#{Interpolation::SYSTEM_DOMAIN}" }

  # bosh int with --var-errs from a copy of the seed vars store, plus the operator's variable
  # ssh_proxy_ws_trusted_router_cidrs from a vars file (a YAML list) unless with_cidrs is false.
  def ws_int(ops, with_cidrs: true)
    @runs ||= {}
    @runs[[ops, with_cidrs]] ||= begin
      dir = Dir.mktmpdir('ws', Interpolation.tmp_root)
      store = File.join(dir, 'vars.yml')
      FileUtils.cp(Interpolation.seed_store, store)
      argv = [JobHelpers.bosh_cli, 'int', Interpolation.cf('cf-deployment.yml')]
      ops.each { |o| argv += ['-o', o] }
      argv += ['-v', "system_domain=#{Interpolation::SYSTEM_DOMAIN}", '--vars-store', store, '--var-errs']
      if with_cidrs
        File.write(File.join(dir, 'cidrs.yml'), { 'ssh_proxy_ws_trusted_router_cidrs' => cidrs }.to_yaml)
        argv += ['-l', File.join(dir, 'cidrs.yml')]
      end
      output, status = JobHelpers.run(argv, timeout: 300)
      { success: status.success?, output: output,
        manifest: status.success? ? YAML.safe_load(output) : nil, vars: YAML.safe_load(File.read(store)) }
    end
  end

  def expect_websocket(ops, group_name)
    run = ws_int(ops)
    expect(run[:success]).to be(true), "bosh int #{ops.map { |o| File.basename(o) }.join(' ')} failed:\n#{run[:output]}"
    manifest = run[:manifest]
    vars = run[:vars]

    proxy = job(manifest, group_name, 'ssh_proxy')
    expect(proxy['release']).to eq('app-ssh')
    expect(manifest['releases'].select { |r| r['name'] == 'app-ssh' }).to eq([{ 'name' => 'app-ssh', 'version' => 'latest' }])
    props = proxy['properties']['diego']['ssh_proxy']
    expect(props['listen_ws_addr']).to eq('0.0.0.0:9443')
    expect(props['ws']).to eq('tls' => { 'cert' => vars['ssh_proxy_ws_tls']['certificate'],
                                         'key' => vars['ssh_proxy_ws_tls']['private_key'] },
                              'trusted_router_cidrs' => cidrs)
    expect(props['host_key']).to eq(vars['diego_ssh_proxy_host_key']['private_key'])

    registrars = (group(manifest, group_name)['jobs']).select { |j| j['name'] == 'route_registrar' }
    expect(registrars.size).to eq(1)
    registrar = registrars.first
    expect(registrar['release']).to eq('routing')
    expect(registrar['properties']['route_registrar']['routes']).to eq([{
      'name' => 'ssh-over-websocket', 'tls_port' => 9443, 'registration_interval' => '20s',
      'server_cert_domain_san' => host, 'uris' => [host]
    }])
    # The same NATS client settings as cf-deployment's own route_registrars.
    expect(registrar['properties']['nats']).to eq(job(manifest, 'api', 'route_registrar')['properties']['nats'])

    # The listener's certificate: for the route's host, and signed by a CA gorouter trusts.
    cert = OpenSSL::X509::Certificate.new(vars['ssh_proxy_ws_tls']['certificate'])
    san = cert.extensions.find { |e| e.oid == 'subjectAltName' }
    expect(san.value).to eq("DNS:#{host}")
    expect(cert.subject.to_s).to include("CN=#{host}")
    router_cas = ManifestLookup.dig(job(manifest, 'router', 'gorouter')['properties'], 'router.ca_certs')
                               .map { |pem| OpenSSL::X509::Certificate.new(pem) }
    expect(router_cas.any? { |ca| ca.subject == cert.issuer && cert.verify(ca.public_key) })
      .to be(true), "gorouter's router.ca_certs does not hold the CA that signed ssh_proxy_ws_tls"
    expect_check_config(proxy)
    manifest
  end

  # The job renders these properties (with the generated certificate) into a config that
  # ssh-proxy -check-config accepts, with the WebSocket listener on.
  def expect_check_config(proxy)
    Dir.mktmpdir('ws-render', Interpolation.tmp_root) do |dir|
      JobHelpers.render_job_to(dir, 'ssh_proxy', proxy['properties'])
      path = File.join(dir, 'config/ssh_proxy.yml')
      config = YAML.safe_load(File.read(path))
      expect(config['listen_ws_addr']).to eq('0.0.0.0:9443')
      expect(config['ws']).to eq('cert_file' => File.join(dir, 'config/certs/ws/server.crt'),
                                 'key_file' => File.join(dir, 'config/certs/ws/server.key'), 'trusted_router_cidrs' => cidrs)
      output, status = JobHelpers.run([JobHelpers.binary('ssh-proxy'), '-check-config', path])
      expect(status.exitstatus).to eq(0), "ssh-proxy -check-config #{path} exited #{status.exitstatus}:\n#{output}"
    end
  end

  describe 'enable-ssh-over-websocket.yml' do
    it 'interpolates alone: ssh_proxy on scheduler from app-ssh with the WS listener, its route and certificate' do
      expect_websocket([ws], 'scheduler')
    end

    it 'does the same with use-app-ssh-release.yml and enable-app-ssh.yml, in either order, keeping their changes' do
      manifest = expect_websocket([use_release, enable, ws], 'scheduler')
      # use-app-ssh-release.yml's link wiring survives.
      expect(job(manifest, 'scheduler', 'ssh_proxy')['consumes'])
        .to eq(job(ws_int([use_release])[:manifest], 'scheduler', 'ssh_proxy')['consumes'])
      other = expect_websocket([ws, use_release, enable], 'scheduler')
      # Each run generates its own ssh_proxy_ws_tls; compare everything else.
      sched = lambda do |m|
        g = Marshal.load(Marshal.dump(group(m, 'scheduler')))
        g['jobs'].find { |j| j['name'] == 'ssh_proxy' }['properties']['diego']['ssh_proxy']['ws'].delete('tls')
        g
      end
      expect(sched.call(other) == sched.call(manifest)).to be(true), 'scheduler differs by order of the ops files'
      expect(other['releases'].sort_by { |r| r['name'] } == manifest['releases'].sort_by { |r| r['name'] }).to be(true)
    end

    it 'does the same with scale-to-one-az.yml' do
      expect_websocket([one_az, use_release, ws], 'scheduler')
    end

    it 'changes nothing else in cf-deployment' do
      with = ws_int([use_release, ws])[:manifest]
      without = ws_int([use_release])[:manifest]
      strip = lambda do |m|
        m = Marshal.load(Marshal.dump(m))
        sched = group(m, 'scheduler')
        sched['jobs'].reject! { |j| j['name'] == 'route_registrar' }
        proxy = sched['jobs'].find { |j| j['name'] == 'ssh_proxy' }
        proxy['properties']['diego']['ssh_proxy'].delete('listen_ws_addr')
        proxy['properties']['diego']['ssh_proxy'].delete('ws')
        m
      end
      expect(strip.call(with)).to eq(without)
    end

    it 'needs the trusted router networks from the operator (bosh int --var-errs names the variable)' do
      run = ws_int([ws], with_cidrs: false)
      expect(run[:success]).to be(false)
      expect(run[:output]).to include('ssh_proxy_ws_trusted_router_cidrs')
    end

    it 'fails loudly after bosh-lite.yml (ssh_proxy is no longer on scheduler)' do
      run = ws_int([bosh_lite, ws])
      expect(run[:success]).to be(false)
      expect(run[:output]).to match(/scheduler.*ssh_proxy/)
    end
  end

  describe 'enable-ssh-over-websocket-bosh-lite.yml' do
    it 'interpolates after bosh-lite.yml: ssh_proxy on router, with and without the release and enable files' do
      expect_websocket([bosh_lite, ws_lite], 'router')
      expect_websocket([bosh_lite, use_release_lite, enable, ws_lite], 'router')
      expect_websocket([bosh_lite, one_az, ws_lite, use_release_lite], 'router')
    end

    it 'fails without bosh-lite.yml (ssh_proxy is not on router)' do
      expect(ws_int([ws_lite])[:success]).to be(false)
    end
  end

  it 'operations/README.md documents both files, the bosh-lite order and what users run meanwhile' do
    readme = File.read(File.join(REPO_ROOT, 'operations', 'README.md'))
    expect(readme).to include('enable-ssh-over-websocket.yml', 'enable-ssh-over-websocket-bosh-lite.yml')
    expect(readme).to match(/-o operations\/bosh-lite.yml.*\n(.*\n)*.*enable-ssh-over-websocket-bosh-lite.yml/)
    expect(readme).to include('app_ssh_ws', 'ProxyCommand', 'app-ssh-ws', 'websocat', 'ssh_proxy_ws_trusted_router_cidrs')
  end
end

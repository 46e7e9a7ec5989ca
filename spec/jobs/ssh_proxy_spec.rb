# frozen_string_literal: true

RSpec.describe 'jobs/ssh_proxy' do

  let(:job) { JobHelpers.release.job('ssh_proxy') }
  let(:base) { { 'diego' => { 'ssh_proxy' => { 'host_key' => 'HOST-KEY-PEM' } } } }
  let(:cert_dir) { '/var/vcap/jobs/ssh_proxy/config/certs' }

  def deep_merge(a, b)
    a.merge(b) { |_k, x, y| x.is_a?(Hash) && y.is_a?(Hash) ? deep_merge(x, y) : y }
  end

  def with(extra)
    deep_merge(base, extra)
  end

  def proxy(extra)
    { 'diego' => { 'ssh_proxy' => extra } }
  end

  def config(props = base, consumes: [])
    YAML.safe_load(job.template('config/ssh_proxy.yml').render(props, consumes: consumes))
  end

  # flat turns a config into {"a.b" => value}, with Go and template durations ("2m0s", "120s")
  # as seconds.
  def flat(h, prefix = nil)
    h.each_with_object({}) do |(k, v), out|
      key = [prefix, k].compact.join('.')
      if v.is_a?(Hash)
        out.merge!(flat(v, key))
      else
        out[key] = duration_seconds(v)
      end
    end
  end

  def duration_seconds(v)
    return ":#{v}" if v.is_a?(Symbol)
    return v.map { |e| duration_seconds(e) } if v.is_a?(Array)

    m = v.is_a?(String) && v.match(/\A(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?\z/)
    return v if !m || v.empty?

    m[1].to_i * 3600 + m[2].to_i * 60 + m[3].to_f
  end

  def file(path, props = base, consumes: [])
    job.template(path).render(props, consumes: consumes)
  end

  let(:bbs_mtls) do
    proxy('bbs' => { 'ca_cert' => 'BBS-CA', 'client_cert' => 'BBS-CERT', 'client_key' => 'BBS-KEY' })
  end

  def bbs_link(address: 'q-s0.diego-api.default.cf.bosh', listen_addr: '0.0.0.0:8889', instances: nil)
    instances ||= [T::LinkInstance.new(name: 'diego-api', index: 0, id: 'bbs-0', az: 'z1', address: 'bbs-0.diego-api.default.cf.bosh')]
    props = listen_addr.nil? ? {} : { 'diego' => { 'bbs' => { 'listen_addr' => listen_addr } } }
    T::Link.new(name: 'bbs', type: 'bbs', address: address, properties: props, instances: instances)
  end

  def uaa_link(port: 9443)
    T::Link.new(name: 'uaa', type: 'uaa', properties: { 'uaa' => { 'ssl' => { 'port' => port } } },
                instances: [T::LinkInstance.new(name: 'uaa', address: 'uaa-0.uaa.default.cf.bosh')])
  end

  def cc_link(hostname: 'cc.internal.example', port: 9024, ca: 'CC-LINK-CA')
    T::Link.new(name: 'cloud_controller_https_endpoint', type: 'cloud_controller_https_endpoint',
                properties: { 'cc' => { 'internal_service_hostname' => hostname,
                                        'public_tls' => { 'port' => port, 'ca_cert' => ca } } },
                instances: [T::LinkInstance.new(name: 'api', address: 'api-0.api.default.cf.bosh')])
  end

  describe 'job spec' do
    # Property names of diego-release's ssh_proxy job (looked up in cloudfoundry/diego-release
    # jobs/ssh_proxy/spec and cf-deployment v58's use of it). Ours must accept every one.
    upstream = %w[
      bpm.enabled diego.ssl.skip_cert_verify
      diego.ssh_proxy.listen_addr diego.ssh_proxy.healthcheck_listen_addr diego.ssh_proxy.disable_healthcheck_server
      diego.ssh_proxy.bbs.api_location diego.ssh_proxy.bbs.ca_cert diego.ssh_proxy.bbs.client_cert
      diego.ssh_proxy.bbs.client_key diego.ssh_proxy.bbs.require_ssl diego.ssh_proxy.bbs.client_session_cache_size
      diego.ssh_proxy.bbs.max_idle_conns_per_host
      diego.ssh_proxy.host_key diego.ssh_proxy.allowed_ciphers diego.ssh_proxy.allowed_macs
      diego.ssh_proxy.allowed_keyexchanges diego.ssh_proxy.debug_addr diego.ssh_proxy.log_level
      diego.ssh_proxy.dropsonde_port diego.ssh_proxy.enable_cf_auth diego.ssh_proxy.enable_diego_auth
      diego.ssh_proxy.diego_credentials diego.ssh_proxy.uaa_token_url diego.ssh_proxy.uaa_secret
      diego.ssh_proxy.idle_connection_timeout_in_seconds diego.ssh_proxy.max_connection_duration_in_seconds
      diego.ssh_proxy.uaa.url diego.ssh_proxy.uaa.port
      diego.ssh_proxy.uaa.ca_cert diego.ssh_proxy.cc.internal_service_hostname diego.ssh_proxy.cc.external_port
      diego.ssh_proxy.cc.tls_port diego.ssh_proxy.cc.ca_cert diego.ssh_proxy.cc.client_cert diego.ssh_proxy.cc.client_key
      diego.ssh_proxy.allowed_host_key_algorithms
      connect_to_instance_address enable_consul_service_registration logging.format.timestamp
      backends.tls.enabled backends.tls.ca_certificates backends.tls.client_certificate backends.tls.client_private_key
      loggregator.use_v2_api loggregator.v2_api_port loggregator.ca_cert loggregator.cert loggregator.key
    ]

    it "declares every property of diego-release's ssh_proxy" do
      expect(upstream - job.spec['properties'].keys).to eq([])
    end

    it 'describes every property' do
      undocumented = job.spec['properties'].select { |_n, d| d.nil? || d['description'].to_s.strip.empty? }.keys
      expect(undocumented).to eq([])
    end

    it "keeps diego-release's defaults where it declares one" do
      defaults = job.spec['properties'].transform_values { |d| d['default'] }
      expect(defaults).to include(
        'diego.ssh_proxy.listen_addr' => '0.0.0.0:2222', 'diego.ssh_proxy.healthcheck_listen_addr' => '0.0.0.0:2223',
        'diego.ssh_proxy.log_level' => 'info', 'diego.ssh_proxy.enable_cf_auth' => false,
        'diego.ssh_proxy.enable_diego_auth' => false, 'diego.ssh_proxy.bbs.require_ssl' => true,
        'diego.ssh_proxy.uaa.url' => 'https://uaa.service.cf.internal', 'diego.ssl.skip_cert_verify' => false,
        'connect_to_instance_address' => false, 'backends.tls.enabled' => false, 'loggregator.v2_api_port' => 3458,
        'diego.ssh_proxy.debug_addr' => '127.0.0.1:17016', 'diego.ssh_proxy.dropsonde_port' => 3457,
        'logging.format.timestamp' => 'unix-epoch', 'diego.ssh_proxy.cc.internal_service_hostname' => 'cloud-controller-ng.service.cf.internal',
        'diego.ssh_proxy.cc.external_port' => 9022
      )
    end

    it 'consumes bbs, uaa, cloud_controller_https_endpoint and sshd optionally, and provides ssh_proxy' do
      consumes = job.spec['consumes'].to_h { |c| [c['name'], [c['type'], c['optional']]] }
      expect(consumes).to eq('bbs' => ['bbs', true], 'uaa' => ['uaa', true],
                             'cloud_controller_https_endpoint' => ['cloud_controller_https_endpoint', true],
                             'sshd' => ['sshd', true])
      provides = job.spec['provides'].first
      expect(provides.values_at('name', 'type')).to eq(%w[ssh_proxy ssh_proxy])
      expect(provides['properties']).to eq(%w[diego.ssh_proxy.listen_addr diego.ssh_proxy.host_key_fingerprint])
      expect(provides['properties'] - job.spec['properties'].keys).to eq([])
    end

    it 'uses the ssh_proxy package and has a template file for every templates: entry' do
      expect(job.spec['packages']).to eq(['ssh_proxy'])
      job.spec['templates'].each_key do |src|
        expect(File).to exist(File.join(REPO_ROOT, 'jobs/ssh_proxy/templates', src))
      end
    end
  end

  describe 'bpm.yml and monit' do
    it 'runs process ssh_proxy from the package with the rendered config and 100000 open files' do
      bpm = YAML.safe_load(file('config/bpm.yml'))
      process = bpm['processes'].first
      expect(bpm['processes'].size).to eq(1)
      expect(process['name']).to eq('ssh_proxy')
      expect(process['executable']).to eq('/var/vcap/packages/ssh_proxy/bin/ssh-proxy')
      expect(process['args']).to eq(['-config', '/var/vcap/jobs/ssh_proxy/config/ssh_proxy.yml'])
      expect(process['limits']).to eq('open_files' => 100_000)
      expect(job.spec['templates'].values).to include('config/ssh_proxy.yml')
    end

    it 'monit starts and stops the bpm process' do
      monit = File.read(File.join(REPO_ROOT, 'jobs/ssh_proxy/monit'))
      expect(monit).to include('check process ssh_proxy')
      expect(monit).to include('/var/vcap/sys/run/bpm/ssh_proxy/ssh_proxy.pid')
      expect(monit).to include('bpm start ssh_proxy').and include('bpm stop ssh_proxy')
    end
  end

  describe 'defaults' do
    it 'renders the documented defaults with only a host key' do
      expect(config).to eq(
        'address' => '0.0.0.0:2222', 'health_check_address' => '0.0.0.0:2223', 'log_level' => 'info',
        'log_time_format' => 'unix-epoch', 'debug_address' => '127.0.0.1:17016',
        'host_key_files' => ['/var/vcap/jobs/ssh_proxy/config/keys/host_key'], 'next_host_key_files' => [],
        'allowed_ciphers' => [], 'allowed_macs' => [], 'allowed_key_exchanges' => [], 'allowed_host_key_algorithms' => [],
        'idle_connection_timeout' => '300s', 'max_connection_duration' => '0s', 'communication_timeout' => '10s',
        'connect_to_instance_address' => false,
        'enable_cf_auth' => false, 'enable_diego_auth' => false, 'diego_credentials' => '',
        'uaa' => { 'token_url' => 'https://uaa.service.cf.internal:8443/oauth/token', 'client_id' => 'ssh-proxy',
                   'client_secret' => '', 'ca_cert_file' => '', 'skip_cert_verify' => false },
        'cc' => { 'internal_url' => 'http://cloud-controller-ng.service.cf.internal:9022', 'ca_cert_file' => '',
                  'client_cert_file' => '', 'client_key_file' => '', 'skip_cert_verify' => false },
        'bbs' => { 'address' => 'https://bbs.service.cf.internal:8889', 'ca_cert_file' => '', 'client_cert_file' => '',
                   'client_key_file' => '', 'server_name' => '' },
        'backends_tls' => { 'enabled' => false, 'ca_cert_files' => [], 'client_cert_file' => '', 'client_key_file' => '',
                            'allow_plaintext_fallback' => false },
        'static_targets' => [],
        'handshake_timeout' => '120s', 'preauth_idle_timeout' => '90s', 'max_auth_tries' => 6,
        'max_connections' => 10_000, 'max_unauthenticated_connections' => 1000, 'client_addresses_preserved' => false,
        'per_source_penalties' => { 'enabled' => true, 'authfail' => '5s',
                                    'min' => '15s', 'max' => '600s', 'max_sources' => 65_536, 'overflow' => 'permissive' },
        'per_source_penalty_exempt_list' => ['127.0.0.0/8', '::1/128'], 'keepalive' => { 'interval' => '30s', 'count_max' => 3 },
        'proxy_protocol' => { 'enabled' => false, 'allowed_cidrs' => [] }, 'drain_timeout' => '60s',
        'metrics' => { 'address' => '', 'cert_file' => '', 'key_file' => '' },
        'audit_log_file' => '/var/vcap/sys/log/ssh_proxy/audit.log',
        'loggregator' => { 'enabled' => false, 'address' => 'localhost:3458', 'ca_cert_file' => '', 'cert_file' => '',
                           'key_file' => '', 'source_id' => 'ssh_proxy', 'instance_id' => 'xxxxxx-xxxxxxxx-xxxxx' },
        'listen_ws_addr' => '', 'disable_tcp_listener' => false,
        'ws' => { 'cert_file' => '', 'key_file' => '', 'trusted_router_cidrs' => [] },
        'policy' => { 'shell' => true, 'exec' => true, 'scp' => true, 'pty' => true, 'sftp' => true,
                      'other_subsystems' => true, 'local_forwarding' => true, 'permit_open' => ['any'],
                      'remote_forwarding' => true, 'permit_listen' => ['any'],
                      'accept_env' => ['LANG', 'LC_*', 'TERM', 'COLORTERM', 'NO_COLOR'],
                      'max_sessions_per_connection' => 10, 'max_channels_per_connection' => 256,
                      'max_sessions_per_user' => 0, 'max_sessions_per_instance' => 0, 'max_session_duration' => '0s' },
        'recording' => { 'enabled' => false, 'directory' => '/var/vcap/store/ssh_proxy/recordings',
                         'max_file_bytes' => 64 * 1024 * 1024, 'max_total_bytes' => 10_240 * 1024 * 1024,
                         'record_input' => false }
      )
    end

    # proxyconfig.Default is what a config file is read over. It must be the job's defaults,
    # except what the job derives from its VM or deployment (empty, i.e. off, in Go).
    it 'agrees with ssh-proxy -print-defaults, except what the job derives from its VM or deployment' do
      out, status = JobHelpers.run([JobHelpers.binary('ssh-proxy'), '-print-defaults'])
      expect(status).to be_success, out
      # Psych reads a plain scalar that starts with ':' (Go writes ::1/128 unquoted) as a Ruby
      # Symbol; in YAML it is a string.
      go = flat(YAML.safe_load(out, permitted_classes: [Symbol]))
      rendered = flat(config)
      derived = %w[host_key_files audit_log_file health_check_address debug_address uaa.token_url cc.internal_url
                   bbs.address loggregator.instance_id]
      derived.each do |k|
        expect(go.fetch(k)).to be_empty, "#{k}: Go default #{go[k].inspect} (listed as derived by the job)"
        expect(rendered.fetch(k)).not_to be_empty, "#{k} is not derived by the job; drop it from the list"
      end
      expect(go.except(*derived)).to eq(rendered.except(*derived))
    end

    it 'renders empty cert and key files when nothing is set' do
      %w[config/keys/additional_host_keys config/keys/next_host_keys config/certs/bbs/ca.crt config/certs/bbs/client.crt config/certs/bbs/client.key
         config/certs/uaa/ca.crt config/certs/cc/ca.crt config/certs/cc/client.crt config/certs/cc/client.key
         config/certs/backends_tls/ca.crt config/certs/backends_tls/client.crt
         config/certs/backends_tls/client.key config/certs/loggregator/ca.crt config/certs/loggregator/client.crt
         config/certs/loggregator/client.key config/certs/ws/server.crt config/certs/ws/server.key].each do |path|
        expect(file(path).strip).to eq(''), path
      end
    end

    it 'is not changed by the properties accepted only for compatibility' do
      compat = {
        'bpm' => { 'enabled' => true },
        'enable_consul_service_registration' => false,
        'diego' => { 'ssh_proxy' => { 'dropsonde_port' => 1,
                                      'bbs' => { 'client_session_cache_size' => 5, 'max_idle_conns_per_host' => 7 } } }
      }
      expect(config(with(compat))).to eq(config)
    end
  end

  describe 'listeners, logging and timeouts' do
    it 'maps listen addresses, log level and timeouts' do
      c = config(with(proxy('listen_addr' => '127.0.0.1:3022', 'healthcheck_listen_addr' => '127.0.0.1:3023',
                            'log_level' => 'debug', 'idle_connection_timeout_in_seconds' => 0,
                            'max_connection_duration_in_seconds' => 3600, 'communication_timeout_in_seconds' => 4)))
      expect(c.values_at('address', 'health_check_address', 'log_level', 'idle_connection_timeout',
                         'max_connection_duration', 'communication_timeout'))
        .to eq(['127.0.0.1:3022', '127.0.0.1:3023', 'debug', '0s', '3600s', '4s'])
    end

    it 'leaves the connection duration unlimited when max_connection_duration_in_seconds is unset or 0' do
      expect(config['max_connection_duration']).to eq('0s')
      expect(config(with(proxy('max_connection_duration_in_seconds' => 0)))['max_connection_duration']).to eq('0s')
    end

    it "maps diego-release's debug_addr and logging.format.timestamp" do
      c = config(with(deep_merge(proxy('debug_addr' => '127.0.0.1:27016'), 'logging' => { 'format' => { 'timestamp' => 'rfc3339' } })))
      expect(c.values_at('debug_address', 'log_time_format')).to eq(['127.0.0.1:27016', 'rfc3339'])
      expect(config(with(proxy('debug_addr' => '')))['debug_address']).to eq('')
    end

    it 'turns the health-check server off with disable_healthcheck_server' do
      expect(config(with(proxy('disable_healthcheck_server' => true)))['health_check_address']).to eq('')
    end

    it 'maps connect_to_instance_address' do
      expect(config(with('connect_to_instance_address' => true))['connect_to_instance_address']).to be(true)
    end
  end

  describe 'host keys' do
    it 'fails to render without diego.ssh_proxy.host_key, naming it' do
      expect { config({}) }.to raise_error(/Can't find property '\["diego.ssh_proxy.host_key"\]'/)
      expect { file('config/keys/host_key', {}) }.to raise_error(/diego.ssh_proxy.host_key/)
    end

    it 'writes the host key into keys/host_key' do
      expect(file('config/keys/host_key').strip).to eq('HOST-KEY-PEM')
    end

    it 'presents additional_host_keys beside host_key, all from one file' do
      props = with(proxy('additional_host_keys' => ["ED-PEM\n", 'ECDSA-PEM']))
      expect(config(props)['host_key_files']).to eq(['/var/vcap/jobs/ssh_proxy/config/keys/host_key',
                                                     '/var/vcap/jobs/ssh_proxy/config/keys/additional_host_keys'])
      expect(file('config/keys/additional_host_keys', props)).to eq("ED-PEM\nECDSA-PEM\n")
    end

    it 'announces next_host_keys from their own file, without presenting them' do
      props = with(proxy('next_host_keys' => %w[NEXT-1 NEXT-2]))
      expect(config(props)['next_host_key_files']).to eq(['/var/vcap/jobs/ssh_proxy/config/keys/next_host_keys'])
      expect(config(props)['host_key_files']).to eq(['/var/vcap/jobs/ssh_proxy/config/keys/host_key'])
      expect(file('config/keys/next_host_keys', props)).to eq("NEXT-1\nNEXT-2\n")
    end
  end

  describe 'algorithm lists' do
    it "splits diego-release's comma-separated strings and trims blanks" do
      c = config(with(proxy('allowed_ciphers' => 'aes128-gcm@openssh.com, chacha20-poly1305@openssh.com',
                            'allowed_macs' => 'hmac-sha2-256-etm@openssh.com,',
                            'allowed_keyexchanges' => 'curve25519-sha256',
                            'allowed_host_key_algorithms' => 'ssh-ed25519')))
      expect(c['allowed_ciphers']).to eq(%w[aes128-gcm@openssh.com chacha20-poly1305@openssh.com])
      expect(c['allowed_macs']).to eq(%w[hmac-sha2-256-etm@openssh.com])
      expect(c['allowed_key_exchanges']).to eq(%w[curve25519-sha256])
      expect(c['allowed_host_key_algorithms']).to eq(%w[ssh-ed25519])
    end

    it 'accepts lists too' do
      expect(config(with(proxy('allowed_ciphers' => %w[a b])))['allowed_ciphers']).to eq(%w[a b])
    end
  end

  describe 'authentication modes' do
    it 'maps enable_diego_auth and diego_credentials' do
      c = config(with(deep_merge(bbs_mtls, proxy('enable_diego_auth' => true, 'diego_credentials' => 's3cret'))))
      expect(c.values_at('enable_diego_auth', 'diego_credentials', 'enable_cf_auth')).to eq([true, 's3cret', false])
    end

    it 'maps enable_cf_auth' do
      expect(config(with(deep_merge(bbs_mtls, proxy('enable_cf_auth' => true))))['enable_cf_auth']).to be(true)
    end
  end

  describe 'UAA' do
    it 'maps the secret, client id, CA file and skip_cert_verify' do
      props = with(proxy('uaa_secret' => 'uaa-pw', 'uaa' => { 'ca_cert' => 'UAA-CA', 'client_id' => 'other' }))
      props = deep_merge(props, 'diego' => { 'ssl' => { 'skip_cert_verify' => true } })
      uaa = config(props)['uaa']
      expect(uaa).to eq('token_url' => 'https://uaa.service.cf.internal:8443/oauth/token', 'client_id' => 'other',
                        'client_secret' => 'uaa-pw', 'ca_cert_file' => "#{cert_dir}/uaa/ca.crt", 'skip_cert_verify' => true)
      expect(config(props)['cc']['skip_cert_verify']).to be(true)
      expect(file('config/certs/uaa/ca.crt', props).strip).to eq('UAA-CA')
    end

    it 'builds the token URL from uaa.url and uaa.port' do
      c = config(with(proxy('uaa' => { 'url' => 'https://login.example.com/', 'port' => 443 })))
      expect(c['uaa']['token_url']).to eq('https://login.example.com:443/oauth/token')
    end

    it "takes the port from the uaa link's uaa.ssl.port when uaa.port is unset" do
      expect(config(base, consumes: [uaa_link])['uaa']['token_url']).to eq('https://uaa.service.cf.internal:9443/oauth/token')
    end

    it 'lets an explicit uaa.port win over the link' do
      c = config(with(proxy('uaa' => { 'port' => 8443 })), consumes: [uaa_link(port: 1)])
      expect(c['uaa']['token_url']).to eq('https://uaa.service.cf.internal:8443/oauth/token')
    end

    it 'lets the deprecated uaa_token_url win over everything' do
      c = config(with(proxy('uaa_token_url' => 'https://legacy.example/oauth/token', 'uaa' => { 'port' => 1 })),
                 consumes: [uaa_link])
      expect(c['uaa']['token_url']).to eq('https://legacy.example/oauth/token')
    end
  end

  describe 'Cloud Controller' do
    it "falls back to diego-release's plaintext URL without link or properties" do
      expect(config['cc']['internal_url']).to eq('http://cloud-controller-ng.service.cf.internal:9022')
    end

    it 'uses hostname and port properties without a link' do
      c = config(with(proxy('cc' => { 'internal_service_hostname' => 'cc.example', 'external_port' => 80 })))
      expect(c['cc']['internal_url']).to eq('http://cc.example:80')
    end

    it 'uses host, TLS port and CA of the cloud_controller_https_endpoint link when it carries a CA' do
      c = config(base, consumes: [cc_link])
      expect(c['cc']['internal_url']).to eq('https://cc.internal.example:9024')
      expect(c['cc']['ca_cert_file']).to eq("#{cert_dir}/cc/ca.crt")
      expect(file('config/certs/cc/ca.crt', base, consumes: [cc_link]).strip).to eq('CC-LINK-CA')
    end

    # diego-release: the link with a CA wins over explicit internal_service_hostname/external_port
    # (an external_port of 9022 must not turn into TLS to a plain-HTTP port).
    it 'lets the link with a CA win over explicit hostname, external_port and ca_cert, as upstream' do
      props = with(proxy('cc' => { 'internal_service_hostname' => 'mine.example', 'external_port' => 9022, 'ca_cert' => 'MY-CA' }))
      c = config(props, consumes: [cc_link])
      expect(c['cc']['internal_url']).to eq('https://cc.internal.example:9024')
      expect(file('config/certs/cc/ca.crt', props, consumes: [cc_link]).strip).to eq('CC-LINK-CA')
    end

    it 'ignores a link without a CA: plain HTTP to hostname and external_port, as upstream' do
      props = with(proxy('cc' => { 'internal_service_hostname' => 'mine.example', 'external_port' => 9022 }))
      c = config(props, consumes: [cc_link(ca: nil)])
      expect(c['cc'].values_at('internal_url', 'ca_cert_file')).to eq(['http://mine.example:9022', ''])
      expect(config(base, consumes: [cc_link(ca: '')])['cc']['internal_url'])
        .to eq('http://cloud-controller-ng.service.cf.internal:9022')
    end

    it 'prefers mutual TLS on tls_port over the link when port, CA, cert and key are all set, as upstream' do
      mtls = { 'tls_port' => 9023, 'ca_cert' => 'MTLS-CA', 'client_cert' => 'CC-CERT', 'client_key' => 'CC-KEY' }
      props = with(proxy('cc' => mtls))
      c = config(props, consumes: [cc_link])
      expect(c['cc']['internal_url']).to eq('https://cloud-controller-ng.service.cf.internal:9023')
      expect(c['cc'].values_at('client_cert_file', 'client_key_file'))
        .to eq(["#{cert_dir}/cc/client.crt", "#{cert_dir}/cc/client.key"])
      expect(file('config/certs/cc/ca.crt', props, consumes: [cc_link]).strip).to eq('MTLS-CA')
      partial = with(proxy('cc' => mtls.reject { |k, _| k == 'client_key' }))
      expect(config(partial)['cc']['internal_url']).to eq('http://cloud-controller-ng.service.cf.internal:9022')
      expect(config(partial, consumes: [cc_link])['cc']['internal_url']).to eq('https://cc.internal.example:9024')
    end

    it 'lets cc.internal_url win over hostname, port and link' do
      props = with(proxy('cc' => { 'internal_url' => 'https://cc.override:9999', 'external_port' => 1 }))
      expect(config(props, consumes: [cc_link])['cc']['internal_url']).to eq('https://cc.override:9999')
      expect(file('config/certs/cc/ca.crt', props, consumes: [cc_link]).strip).to eq('CC-LINK-CA')
      own = with(proxy('cc' => { 'internal_url' => 'https://cc.override:9999', 'ca_cert' => 'MY-CA' }))
      expect(file('config/certs/cc/ca.crt', own, consumes: [cc_link]).strip).to eq('MY-CA')
    end

    it 'writes a CA from the property alone, and no CA file when neither is set' do
      expect(config(with(proxy('cc' => { 'ca_cert' => 'X' })))['cc']['ca_cert_file']).to eq("#{cert_dir}/cc/ca.crt")
      expect(config(base, consumes: [cc_link(ca: nil)])['cc']['ca_cert_file']).to eq('')
    end

    it 'maps the optional mutual-TLS pair' do
      props = with(proxy('cc' => { 'client_cert' => 'CC-CERT', 'client_key' => 'CC-KEY' }))
      expect(config(props)['cc'].values_at('client_cert_file', 'client_key_file'))
        .to eq(["#{cert_dir}/cc/client.crt", "#{cert_dir}/cc/client.key"])
      expect(file('config/certs/cc/client.crt', props).strip).to eq('CC-CERT')
      expect(file('config/certs/cc/client.key', props).strip).to eq('CC-KEY')
    end
  end

  describe 'BBS' do
    it 'uses api_location over https' do
      c = config(with(proxy('bbs' => { 'api_location' => 'bbs.example:1234' })))
      expect(c['bbs'].values_at('address', 'server_name')).to eq(['https://bbs.example:1234', ''])
    end

    it 'renders http:// when require_ssl is false (the proxy rejects it)' do
      expect(config(with(proxy('bbs' => { 'require_ssl' => false })))['bbs']['address']).to eq('http://bbs.service.cf.internal:8889')
    end

    it "fills the address from the bbs link (group address, listen_addr's port) and verifies bbs.service.cf.internal" do
      c = config(base, consumes: [bbs_link(listen_addr: '0.0.0.0:8999')])
      expect(c['bbs'].values_at('address', 'server_name'))
        .to eq(['https://q-s0.diego-api.default.cf.bosh:8999', 'bbs.service.cf.internal'])
    end

    it "uses the link's first instance when the link has no group address" do
      c = config(base, consumes: [bbs_link(address: nil)])
      expect(c['bbs']['address']).to eq('https://bbs-0.diego-api.default.cf.bosh:8889')
    end

    it 'lets an explicit api_location win over the link, without a server-name override' do
      c = config(with(proxy('bbs' => { 'api_location' => '10.0.0.5:8889' })), consumes: [bbs_link])
      expect(c['bbs'].values_at('address', 'server_name')).to eq(['https://10.0.0.5:8889', ''])
    end

    it 'lets an explicit server_name win, with or without the link' do
      props = with(proxy('bbs' => { 'server_name' => 'bbs.example' }))
      expect(config(props, consumes: [bbs_link])['bbs']['server_name']).to eq('bbs.example')
      expect(config(props)['bbs']['server_name']).to eq('bbs.example')
    end

    it 'maps CA and client pair to files' do
      props = with(bbs_mtls)
      expect(config(props)['bbs'].values_at('ca_cert_file', 'client_cert_file', 'client_key_file'))
        .to eq(%W[#{cert_dir}/bbs/ca.crt #{cert_dir}/bbs/client.crt #{cert_dir}/bbs/client.key])
      expect(%w[ca.crt client.crt client.key].map { |f| file("config/certs/bbs/#{f}", props).strip })
        .to eq(%w[BBS-CA BBS-CERT BBS-KEY])
    end

    %w[enable_cf_auth enable_diego_auth].each do |mode|
      %w[ca_cert client_cert client_key].each do |missing|
        it "fails to render with #{mode} on and diego.ssh_proxy.bbs.#{missing} unset, naming it" do
          bbs = { 'ca_cert' => 'A', 'client_cert' => 'B', 'client_key' => 'C' }.reject { |k, _| k == missing }
          props = with(proxy(mode => true, 'bbs' => bbs))
          expect { config(props) }.to raise_error(/Can't find property '\["diego.ssh_proxy.bbs.#{missing}"\]'/)
        end
      end
    end
  end

  describe 'backends TLS' do
    let(:tls) { { 'backends' => { 'tls' => { 'enabled' => true, 'ca_certificates' => ['CA-ONE', "CA-TWO\n"] } } } }

    it 'writes every CA into one file and maps enabled' do
      c = config(with(tls))
      expect(c['backends_tls'].values_at('enabled', 'ca_cert_files')).to eq([true, ["#{cert_dir}/backends_tls/ca.crt"]])
      expect(file('config/certs/backends_tls/ca.crt', with(tls)).strip).to eq("CA-ONE\nCA-TWO")
    end

    it 'fails to render when enabled without backends.tls.ca_certificates, naming it' do
      props = with('backends' => { 'tls' => { 'enabled' => true } })
      expect { config(props) }.to raise_error(/backends.tls.ca_certificates/)
      props = with('backends' => { 'tls' => { 'enabled' => true, 'ca_certificates' => [''] } })
      expect { config(props) }.to raise_error(/backends.tls.ca_certificates/)
    end

    it 'maps the client pair and allow_plaintext_fallback' do
      props = deep_merge(with(tls), 'backends' => { 'tls' => { 'client_certificate' => 'BT-CERT', 'client_private_key' => 'BT-KEY',
                                                               'allow_plaintext_fallback' => true } })
      c = config(props)['backends_tls']
      expect(c.values_at('client_cert_file', 'client_key_file', 'allow_plaintext_fallback'))
        .to eq(["#{cert_dir}/backends_tls/client.crt", "#{cert_dir}/backends_tls/client.key", true])
      expect(file('config/certs/backends_tls/client.crt', props).strip).to eq('BT-CERT')
      expect(file('config/certs/backends_tls/client.key', props).strip).to eq('BT-KEY')
    end
  end

  describe 'static targets' do
    it 'copies diego.ssh_proxy.static_targets as-is' do
      targets = [{ 'name' => 'vm', 'address' => '10.0.0.9:2222' }]
      expect(config(with(proxy('static_targets' => targets)))['static_targets']).to eq(targets)
    end

    def sshd_link
      instances = [T::LinkInstance.new(name: 'sshd', index: 1, id: 'sshd-1', address: 'sshd-1.sshd.app-ssh.bosh'),
                   T::LinkInstance.new(name: 'sshd', index: 0, id: 'sshd-0', address: 'sshd-0.sshd.app-ssh.bosh')]
      T::Link.new(name: 'sshd', type: 'sshd', instances: instances,
                  properties: { 'sshd' => { 'listen_addr' => '0.0.0.0:2022', 'host_key_fingerprint' => 'aa:bb' } })
    end

    it 'adds the sshd link as one more target, instances in index order, when the login key is set' do
      props = with(proxy('static_targets' => [{ 'name' => 'vm' }],
                         'sshd_target' => { 'private_key' => 'LOGIN-PEM', 'authorized_keys' => ['ssh-ed25519 AAAA u'] }))
      expect(config(props, consumes: [sshd_link])['static_targets']).to eq(
        [{ 'name' => 'vm' },
         { 'name' => 'sshd', 'instances' => ['sshd-0.sshd.app-ssh.bosh:2022', 'sshd-1.sshd.app-ssh.bosh:2022'],
           'host_fingerprint' => 'aa:bb', 'private_key' => 'LOGIN-PEM', 'authorized_keys' => ['ssh-ed25519 AAAA u'] }]
      )
    end

    it 'names the link target by sshd_target.name' do
      props = with(proxy('sshd_target' => { 'name' => 'app', 'private_key' => 'K' }))
      expect(config(props, consumes: [sshd_link])['static_targets'].map { |t| t['name'] }).to eq(['app'])
    end

    it 'ignores the sshd link without a login key, and the login key without the link' do
      expect(config(base, consumes: [sshd_link])['static_targets']).to eq([])
      expect(config(with(proxy('sshd_target' => { 'private_key' => 'K' })))['static_targets']).to eq([])
    end
  end

  describe 'loggregator' do
    let(:loggregator) do
      { 'loggregator' => { 'use_v2_api' => true, 'ca_cert' => 'LOG-CA', 'cert' => 'LOG-CERT', 'key' => 'LOG-KEY' } }
    end

    it 'turns on app log lines and the gauge with use_v2_api, at localhost:v2_api_port, with the three PEMs as files' do
      c = config(with(loggregator))
      expect(c['loggregator']).to eq('enabled' => true, 'address' => 'localhost:3458',
                                     'ca_cert_file' => "#{cert_dir}/loggregator/ca.crt",
                                     'cert_file' => "#{cert_dir}/loggregator/client.crt",
                                     'key_file' => "#{cert_dir}/loggregator/client.key",
                                     'source_id' => 'ssh_proxy', 'instance_id' => 'xxxxxx-xxxxxxxx-xxxxx')
      expect(file('config/certs/loggregator/ca.crt', with(loggregator)).strip).to eq('LOG-CA')
      expect(file('config/certs/loggregator/client.crt', with(loggregator)).strip).to eq('LOG-CERT')
      expect(file('config/certs/loggregator/client.key', with(loggregator)).strip).to eq('LOG-KEY')
    end

    it 'maps v2_api_port and names the instance by its BOSH id' do
      props = with(deep_merge(loggregator, 'loggregator' => { 'v2_api_port' => 4458 }))
      text = job.template('config/ssh_proxy.yml').render(props, spec: T::InstanceSpec.new(id: 'f0e1-instance'))
      expect(YAML.safe_load(text)['loggregator']).to include('address' => 'localhost:4458', 'instance_id' => 'f0e1-instance')
    end

    it 'leaves a missing certificate unset, for ssh-proxy -check-config to name' do
      c = config(with('loggregator' => { 'use_v2_api' => true, 'ca_cert' => 'LOG-CA' }))
      expect(c['loggregator']).to include('enabled' => true, 'cert_file' => '', 'key_file' => '')
    end
  end

  describe 'SSH over WebSocket' do
    let(:ws) do
      with(proxy('listen_ws_addr' => '0.0.0.0:9443', 'disable_tcp_listener' => true,
                 'ws' => { 'tls' => { 'cert' => 'WS-CERT-PEM', 'key' => 'WS-KEY-PEM' },
                           'trusted_router_cidrs' => ['10.0.16.0/20', '10.0.32.5'] }))
    end

    it 'maps listen_ws_addr, disable_tcp_listener and ws.trusted_router_cidrs, and points at the rendered cert and key' do
      c = config(ws)
      expect(c['listen_ws_addr']).to eq('0.0.0.0:9443')
      expect(c['disable_tcp_listener']).to be(true)
      expect(c['ws']).to eq('cert_file' => "#{cert_dir}/ws/server.crt", 'key_file' => "#{cert_dir}/ws/server.key",
                            'trusted_router_cidrs' => ['10.0.16.0/20', '10.0.32.5'])
      expect(job.spec['templates']).to include('ws_tls.crt.erb' => 'config/certs/ws/server.crt',
                                               'ws_tls.key.erb' => 'config/certs/ws/server.key')
      expect(file('config/certs/ws/server.crt', ws).strip).to eq('WS-CERT-PEM')
      expect(file('config/certs/ws/server.key', ws).strip).to eq('WS-KEY-PEM')
    end

    it 'leaves the cert and key files unset without the properties, for ssh-proxy -check-config to name' do
      c = config(with(proxy('listen_ws_addr' => '0.0.0.0:9443')))
      expect(c['ws']).to include('cert_file' => '', 'key_file' => '')
    end
  end

  describe 'policy and recording' do
    it 'maps every policy and recording property (durations in seconds, sizes in MiB to bytes)' do
      c = config(with(proxy(
        'policy' => { 'shell' => false, 'exec' => false, 'scp' => false, 'pty' => false, 'sftp' => false,
                      'other_subsystems' => false, 'local_forwarding' => false, 'remote_forwarding' => false,
                      'permit_open' => ['127.0.0.1:8080'], 'permit_listen' => ['9000'], 'accept_env' => ['LANG'],
                      'max_sessions_per_connection' => 2, 'max_channels_per_connection' => 3,
                      'max_sessions_per_user' => 4, 'max_sessions_per_instance' => 5,
                      'max_session_duration_in_seconds' => 600 },
        'recording' => { 'enabled' => true, 'directory' => '/var/vcap/store/ssh_proxy/casts',
                         'max_file_size_in_mb' => 2, 'max_total_size_in_mb' => 8, 'record_input' => true }
      )))
      expect(c['policy']).to eq('shell' => false, 'exec' => false, 'scp' => false, 'pty' => false, 'sftp' => false,
                                'other_subsystems' => false, 'local_forwarding' => false, 'remote_forwarding' => false,
                                'permit_open' => ['127.0.0.1:8080'], 'permit_listen' => ['9000'], 'accept_env' => ['LANG'],
                                'max_sessions_per_connection' => 2, 'max_channels_per_connection' => 3,
                                'max_sessions_per_user' => 4, 'max_sessions_per_instance' => 5,
                                'max_session_duration' => '600s')
      expect(c['recording']).to eq('enabled' => true, 'directory' => '/var/vcap/store/ssh_proxy/casts',
                                   'max_file_bytes' => 2 * 1024 * 1024, 'max_total_bytes' => 8 * 1024 * 1024,
                                   'record_input' => true)
    end

    it 'gives bpm the store directory only when recording is on, or the configured directory as a volume' do
      off = YAML.safe_load(file('config/bpm.yml'))['processes'].first
      expect(off.keys).not_to include('persistent_disk', 'additional_volumes')
      on = YAML.safe_load(file('config/bpm.yml', with(proxy('recording' => { 'enabled' => true }))))['processes'].first
      expect(on['persistent_disk']).to eq(true)
      expect(on.keys).not_to include('additional_volumes')
      elsewhere = YAML.safe_load(file('config/bpm.yml', with(proxy('recording' => { 'enabled' => true,
                                                                                    'directory' => '/var/vcap/data/casts' }))))
      expect(elsewhere['processes'].first['additional_volumes']).to eq([{ 'path' => '/var/vcap/data/casts', 'writable' => true }])
    end
  end

  describe 'hardening and operability' do
    it 'maps every limit, penalty, keepalive, PROXY protocol, drain, metrics and audit property' do
      c = config(with(proxy(
        'login_grace_time_in_seconds' => 12, 'preauth_idle_timeout_in_seconds' => 0, 'max_auth_tries' => 3,
        'max_connections' => 500, 'max_unauthenticated_connections' => 50, 'client_addresses_preserved' => true,
        'per_source_penalties' => { 'enabled' => false, 'authfail_seconds' => 2, 'min_seconds' => 6, 'max_seconds' => 60,
                                    'max_sources' => 100, 'overflow' => 'deny-all' },
        'per_source_penalty_exempt_list' => ['10.0.0.0/8'],
        'keepalive_interval_in_seconds' => 0, 'keepalive_count_max' => 5,
        'proxy_protocol' => { 'enabled' => true, 'allowed_cidrs' => ['10.1.0.0/16', '10.2.0.4'] },
        'drain_timeout_in_seconds' => 90, 'metrics' => { 'listen_addr' => '0.0.0.0:9100' }, 'audit_log_file' => ''
      )))
      expect(c.values_at('handshake_timeout', 'preauth_idle_timeout', 'max_auth_tries', 'max_connections',
                         'max_unauthenticated_connections', 'client_addresses_preserved'))
        .to eq(['12s', '0s', 3, 500, 50, true])
      expect(c['per_source_penalties']).to eq('enabled' => false, 'authfail' => '2s', 'min' => '6s', 'max' => '60s',
                                              'max_sources' => 100, 'overflow' => 'deny-all')
      expect(c['per_source_penalty_exempt_list']).to eq(['10.0.0.0/8'])
      expect(c['keepalive']).to eq('interval' => '0s', 'count_max' => 5)
      expect(c['proxy_protocol']).to eq('enabled' => true, 'allowed_cidrs' => ['10.1.0.0/16', '10.2.0.4'])
      expect(c.values_at('drain_timeout', 'audit_log_file')).to eq(['90s', ''])
      expect(c['metrics']).to eq('address' => '0.0.0.0:9100', 'cert_file' => '', 'key_file' => '')
    end

    it 'serves metrics over TLS when certificate and key are set' do
      props = with(proxy('metrics' => { 'listen_addr' => '0.0.0.0:9100',
                                        'tls' => { 'certificate' => 'METRICS-CERT', 'private_key' => 'METRICS-KEY' } }))
      expect(config(props)['metrics']).to eq('address' => '0.0.0.0:9100',
                                             'cert_file' => "#{cert_dir}/metrics/server.crt",
                                             'key_file' => "#{cert_dir}/metrics/server.key")
      expect(file('config/certs/metrics/server.crt', props).strip).to eq('METRICS-CERT')
      expect(file('config/certs/metrics/server.key', props).strip).to eq('METRICS-KEY')
      expect(file('config/certs/metrics/server.crt').strip).to eq('')
    end

    describe 'bin/drain (BOSH dynamic drain protocol)' do
      # Renders the script with its /var/vcap paths moved into a temporary directory and runs it
      # against a real process standing in for ssh-proxy.
      def drain_script(dir, timeout: 60)
        text = file('bin/drain', with(proxy('drain_timeout_in_seconds' => timeout))).gsub('/var/vcap/', "#{dir}/")
        path = File.join(dir, 'drain')
        File.write(path, text)
        File.chmod(0o755, path)
        FileUtils.mkdir_p(File.join(dir, 'sys/run/bpm/ssh_proxy'))
        FileUtils.mkdir_p(File.join(dir, 'sys/log/ssh_proxy'))
        path
      end

      def run_drain(path, *args)
        out, status = JobHelpers.run([path, *args], timeout: 20)
        expect(status.success?).to be(true), out
        out
      end

      it 'is bounded by drain_timeout_in_seconds plus 15' do
        expect(file('bin/drain', with(proxy('drain_timeout_in_seconds' => 45)))).to include('bound=60')
      end

      it 'signals the process, asks to be polled while it runs, and reports 0 once it has exited' do
        Dir.mktmpdir do |dir|
          path = drain_script(dir)
          # A stand-in that, like ssh-proxy, keeps running for a while after SIGTERM.
          pid = Process.spawn('bash', '-c', 'trap "sleep 2; exit 0" TERM; while :; do sleep 0.1; done')
          File.write(File.join(dir, 'sys/run/bpm/ssh_proxy/ssh_proxy.pid'), pid.to_s)
          begin
            expect(run_drain(path, 'job_shutdown', 'hash_unchanged')).to eq("-5\n")
            expect(run_drain(path, 'job_check_status', 'hash_unchanged')).to eq("-5\n")
            Timeout.timeout(15) { Process.wait(pid) }
            expect(run_drain(path, 'job_check_status', 'hash_unchanged')).to eq("0\n")
            expect(File.read(File.join(dir, 'sys/log/ssh_proxy/drain.log'))).to include("sent SIGTERM to ssh-proxy pid #{pid}")
          ensure
            begin
              Process.kill('KILL', pid)
              Process.wait(pid)
            rescue Errno::ESRCH, Errno::ECHILD
              nil
            end
          end
        end
      end

      it 'reports 0 at once when the process is not running, and gives up after the bound' do
        Dir.mktmpdir do |dir|
          path = drain_script(dir, timeout: 0)
          expect(run_drain(path, 'job_shutdown', 'hash_unchanged')).to eq("0\n")
          pid = Process.spawn('bash', '-c', 'trap "" TERM; while :; do sleep 0.1; done')
          File.write(File.join(dir, 'sys/run/bpm/ssh_proxy/ssh_proxy.pid'), pid.to_s)
          begin
            expect(run_drain(path, 'job_shutdown', 'hash_unchanged')).to eq("-5\n")
            # Pretend the drain started longer ago than the bound (15s with drain_timeout 0).
            File.write(File.join(dir, 'data/ssh_proxy/drain-started'), (Time.now.to_i - 16).to_s)
            expect(run_drain(path, 'job_check_status', 'hash_unchanged')).to eq("0\n")
          ensure
            Process.kill('KILL', pid)
            Process.wait(pid)
          end
        end
      end
    end
  end
end

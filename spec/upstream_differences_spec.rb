# frozen_string_literal: true

# docs/upstream-differences.md: one row per property of diego-release's ssh_proxy spec (the
# current one and the properties older versions declared), and every "same as upstream" row
# backed by a spec or test that exists.
RSpec.describe 'docs/upstream-differences.md' do
  UPSTREAM_PROPERTIES = %w[
    bpm.enabled diego.ssl.skip_cert_verify
    diego.ssh_proxy.listen_addr diego.ssh_proxy.healthcheck_listen_addr diego.ssh_proxy.disable_healthcheck_server
    diego.ssh_proxy.bbs.api_location diego.ssh_proxy.bbs.ca_cert diego.ssh_proxy.bbs.client_cert
    diego.ssh_proxy.bbs.client_key diego.ssh_proxy.bbs.require_ssl diego.ssh_proxy.bbs.client_session_cache_size
    diego.ssh_proxy.bbs.max_idle_conns_per_host diego.ssh_proxy.host_key diego.ssh_proxy.allowed_ciphers
    diego.ssh_proxy.allowed_macs diego.ssh_proxy.allowed_keyexchanges diego.ssh_proxy.allowed_host_key_algorithms
    diego.ssh_proxy.debug_addr diego.ssh_proxy.log_level diego.ssh_proxy.dropsonde_port
    diego.ssh_proxy.enable_cf_auth diego.ssh_proxy.enable_diego_auth diego.ssh_proxy.diego_credentials
    diego.ssh_proxy.uaa_token_url diego.ssh_proxy.uaa_secret diego.ssh_proxy.idle_connection_timeout_in_seconds
    diego.ssh_proxy.max_connection_duration_in_seconds diego.ssh_proxy.uaa.url diego.ssh_proxy.uaa.port
    diego.ssh_proxy.uaa.ca_cert diego.ssh_proxy.cc.internal_service_hostname diego.ssh_proxy.cc.external_port
    diego.ssh_proxy.cc.tls_port diego.ssh_proxy.cc.ca_cert diego.ssh_proxy.cc.client_cert diego.ssh_proxy.cc.client_key
    connect_to_instance_address enable_consul_service_registration logging.format.timestamp
    backends.tls.enabled backends.tls.ca_certificates backends.tls.client_certificate backends.tls.client_private_key
    loggregator.use_v2_api loggregator.v2_api_port loggregator.ca_cert loggregator.cert loggregator.key
  ].freeze
  # diego-sshd's flags (its own, debugserver's and lagerflags').
  SSHD_FLAGS = %w[-address -hostKey -authorizedKey -allowUnauthenticatedClients -inheritDaemonEnv -allowedCiphers
                  -allowedMACs -allowedKeyExchanges -logLevel -redactSecrets -redactPatterns -timeFormat -debugAddr].freeze

  let(:text) { File.read(File.join(REPO_ROOT, 'docs', 'upstream-differences.md')) }
  let(:rows) do
    lines = text.lines.map(&:strip).select { |l| l.start_with?('|') }
    header = lines.first.split('|').map(&:strip).reject(&:empty?)
    expect(header).to eq(%w[name upstream app-ssh status why test])
    lines.drop(2).map do |l|
      cells = l.sub(/\A\|/, '').sub(/\|\z/, '').split(/(?<!\\)\|/).map(&:strip)
      expect(cells.size).to eq(6), "row has #{cells.size} cells: #{l}"
      header.zip(cells).to_h
    end
  end

  it 'is one table' do
    tables = text.split(/\n\n+/).count { |block| block.lstrip.start_with?('|') }
    expect(tables).to eq(1)
  end

  it "has a row for every property of upstream's ssh_proxy spec and every diego-sshd flag" do
    names = rows.map { |r| r['name'] }.join("\n")
    expect(UPSTREAM_PROPERTIES.reject { |p| names.include?("`#{p}`") }).to eq([])
    expect(SSHD_FLAGS.reject { |f| names.match?(/`#{Regexp.escape(f)}`/) }).to eq([])
  end

  it 'uses only the documented statuses' do
    expect(rows.map { |r| r['status'] }.uniq - ['same', 'differs', 'not supported', 'app-ssh only'])
      .to eq([])
  end

  it 'backs every "same" row with a spec or test that exists' do
    rows.select { |r| r['status'] == 'same' }.each do |r|
      files = r['test'].split(',').map(&:strip)
      expect(files).not_to be_empty, "#{r['name']} claims same as upstream without a test"
      files.each { |f| expect(File.file?(File.join(REPO_ROOT, f))).to be(true), "#{r['name']}: #{f} does not exist" }
    end
  end
end

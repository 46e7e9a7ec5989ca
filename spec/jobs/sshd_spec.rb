# frozen_string_literal: true

RSpec.describe 'jobs/sshd' do
  let(:job) { JobHelpers.release.job('sshd') }
  let(:base) { { 'sshd' => { 'host_key' => 'SSHD-HOST-KEY' } } }

  def config(extra = {})
    props = { 'sshd' => base['sshd'].merge(extra) }
    YAML.safe_load(job.template('config/sshd.yml').render(props))
  end

  describe 'job spec' do
    it 'describes every property, uses the sshd package and provides the sshd link' do
      undocumented = job.spec['properties'].select { |_n, d| d.nil? || d['description'].to_s.strip.empty? }.keys
      expect(undocumented).to eq([])
      expect(job.spec['packages']).to eq(['sshd'])
      link = job.spec['provides'].first
      expect(link.values_at('name', 'type')).to eq(%w[sshd sshd])
      expect(link['properties']).to eq(%w[sshd.listen_addr sshd.host_key_fingerprint])
      expect(link['properties'] - job.spec['properties'].keys).to eq([])
    end

    it 'has a template file for every templates: entry' do
      job.spec['templates'].each_key do |src|
        expect(File).to exist(File.join(REPO_ROOT, 'jobs/sshd/templates', src))
      end
    end
  end

  it 'renders the documented defaults with only a host key' do
    expect(config).to eq(
      'address' => '0.0.0.0:2222', 'host_key_file' => '/var/vcap/jobs/sshd/config/keys/host_key',
      'authorized_keys' => [], 'allow_unauthenticated_clients' => false, 'inherit_daemon_env' => false,
      'allowed_ciphers' => [], 'allowed_macs' => [], 'allowed_key_exchanges' => [], 'allowed_host_key_algorithms' => [],
      'idle_timeout' => '0s', 'keepalive_interval' => '15s', 'keepalive_count_max' => 3, 'log_level' => 'info',
      'gateway_ports' => 'no'
    )
  end

  it 'maps every property' do
    c = config('listen_addr' => '127.0.0.1:2022', 'authorized_keys' => ['ssh-ed25519 AAAA one', ' ', "ssh-rsa BBBB two\n"],
               'allow_unauthenticated_clients' => true, 'inherit_daemon_env' => true,
               'allowed_ciphers' => 'aes256-gcm@openssh.com, aes128-ctr', 'allowed_macs' => ['hmac-sha2-512'],
               'allowed_key_exchanges' => 'curve25519-sha256', 'allowed_host_key_algorithms' => %w[ssh-ed25519],
               'idle_timeout_in_seconds' => 600, 'keepalive_interval_in_seconds' => 0, 'keepalive_count_max' => 9,
               'log_level' => 'warn', 'gateway_ports' => 'clientspecified')
    expect(c).to eq(
      'address' => '127.0.0.1:2022', 'host_key_file' => '/var/vcap/jobs/sshd/config/keys/host_key',
      'authorized_keys' => ['ssh-ed25519 AAAA one', 'ssh-rsa BBBB two'], 'allow_unauthenticated_clients' => true,
      'inherit_daemon_env' => true, 'allowed_ciphers' => %w[aes256-gcm@openssh.com aes128-ctr],
      'allowed_macs' => %w[hmac-sha2-512], 'allowed_key_exchanges' => %w[curve25519-sha256],
      'allowed_host_key_algorithms' => %w[ssh-ed25519], 'idle_timeout' => '600s', 'keepalive_interval' => '0s',
      'keepalive_count_max' => 9, 'log_level' => 'warn', 'gateway_ports' => 'clientspecified'
    )
  end

  it 'maps an unquoted yes/no gateway_ports (a YAML boolean in the manifest) to the word' do
    expect(config('gateway_ports' => true)['gateway_ports']).to eq('yes')
    expect(config('gateway_ports' => false)['gateway_ports']).to eq('no')
  end

  it 'fails to render without sshd.host_key, naming it' do
    expect { job.template('config/sshd.yml').render({}) }.to raise_error(/Can't find property '\["sshd.host_key"\]'/)
    expect { job.template('config/keys/host_key').render({}) }.to raise_error(/sshd.host_key/)
  end

  it 'writes the host key file' do
    expect(job.template('config/keys/host_key').render(base).strip).to eq('SSHD-HOST-KEY')
  end

  it 'runs process sshd under bpm with the rendered config and the open_files limit' do
    bpm = YAML.safe_load(job.template('config/bpm.yml').render({}))
    expect(bpm['processes']).to eq([{ 'name' => 'sshd', 'executable' => '/var/vcap/packages/sshd/bin/sshd',
                                      'args' => ['-config', '/var/vcap/jobs/sshd/config/sshd.yml'],
                                      'limits' => { 'open_files' => 65_536 } }])
    bpm = YAML.safe_load(job.template('config/bpm.yml').render({ 'sshd' => { 'open_files' => 1024 } }))
    expect(bpm['processes'][0]['limits']).to eq('open_files' => 1024)
    monit = File.read(File.join(REPO_ROOT, 'jobs/sshd/monit'))
    expect(monit).to include('check process sshd').and include('bpm start sshd').and include('bpm stop sshd')
  end
end

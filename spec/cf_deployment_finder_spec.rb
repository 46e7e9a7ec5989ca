# frozen_string_literal: true

# scripts/lib/cf-deployment.sh: how scripts/test finds cf-deployment v58.0.0, each step against
# temporary directories (a fake repository root, cache and a local git repository to clone).
RSpec.describe 'scripts/lib/cf-deployment.sh (find_cf_deployment)' do
  LIB = File.join(REPO_ROOT, 'scripts', 'lib', 'cf-deployment.sh')

  around do |example|
    Dir.mktmpdir('cfd-finder') do |dir|
      @dir = dir
      example.run
    end
  end

  # A fake checkout: a directory with cf-deployment.yml.
  def checkout(path)
    FileUtils.mkdir_p(path)
    File.write(File.join(path, 'cf-deployment.yml'), "name: cf\n")
    path
  end

  # Runs find_cf_deployment for a repository at <tmp>/work/app-ssh, HOME and the cache in tmp.
  def find(env = {})
    root = File.join(@dir, 'work', 'app-ssh')
    FileUtils.mkdir_p(root)
    base = { 'HOME' => File.join(@dir, 'home'), 'XDG_CACHE_HOME' => nil, 'APP_SSH_CACHE_DIR' => File.join(@dir, 'cache'),
             'APP_SSH_CF_DEPLOYMENT_DIR' => nil, 'APP_SSH_CF_DEPLOYMENT_URL' => 'file:///nonexistent/cf-deployment.git',
             'APP_SSH_CLONE_TIMEOUT' => '20', 'PATH' => ENV.fetch('PATH') }
    out, err, status = Open3.capture3(base.merge(env), 'bash', '-c', "source #{LIB} && find_cf_deployment #{root}",
                                      unsetenv_others: true)
    [out.strip, err, status.success?]
  end

  it 'uses APP_SSH_CF_DEPLOYMENT_DIR first' do
    mine = checkout(File.join(@dir, 'mine'))
    checkout(File.join(@dir, 'work', 'shared', 'cf-deployment'))
    expect(find('APP_SSH_CF_DEPLOYMENT_DIR' => mine)).to eq([mine, '', true])
  end

  it 'finds it beside the local repository this one was cloned from' do
    origin = File.join(@dir, 'elsewhere', 'app-ssh')
    FileUtils.mkdir_p(origin)
    beside = checkout(File.join(@dir, 'elsewhere', 'shared', 'cf-deployment'))
    root = File.join(@dir, 'work', 'app-ssh')
    FileUtils.mkdir_p(root)
    _, status = Open3.capture2e('git', '-C', root, 'init', '-q')
    expect(status).to be_success
    _, status = Open3.capture2e('git', '-C', root, 'remote', 'add', 'origin', origin)
    expect(status).to be_success
    expect(find).to eq([beside, '', true])
  end

  it 'refuses an APP_SSH_CF_DEPLOYMENT_DIR without cf-deployment.yml, in one line' do
    out, err, ok = find('APP_SSH_CF_DEPLOYMENT_DIR' => File.join(@dir, 'empty'))
    expect([out, ok]).to eq(['', false])
    expect(err.lines.size).to eq(1)
    expect(err).to include('APP_SSH_CF_DEPLOYMENT_DIR=').and include('v58.0.0')
  end

  it 'then ../shared/cf-deployment beside the repository' do
    shared = checkout(File.join(@dir, 'work', 'shared', 'cf-deployment'))
    checkout(File.join(@dir, 'cache', 'cf-deployment-v58.0.0'))
    expect(find).to eq([shared, '', true])
  end

  it 'then the cache' do
    cached = checkout(File.join(@dir, 'cache', 'cf-deployment-v58.0.0'))
    expect(find).to eq([cached, '', true])
  end

  it 'then a shallow clone of the v58.0.0 tag into the cache, reused afterwards' do
    origin = File.join(@dir, 'origin')
    checkout(origin)
    git = ->(*args) { Open3.capture2e('git', '-C', origin, *args).tap { |o, s| raise o unless s.success? } }
    git.call('init', '-q')
    git.call('-c', 'user.name=t', '-c', 'user.email=t@example.com', 'add', '.')
    git.call('-c', 'user.name=t', '-c', 'user.email=t@example.com', 'commit', '-qm', 'v58')
    git.call('tag', 'v58.0.0')
    File.write(File.join(origin, 'cf-deployment.yml'), "name: later\n")
    git.call('-c', 'user.name=t', '-c', 'user.email=t@example.com', 'commit', '-qam', 'later')

    out, err, ok = find('APP_SSH_CF_DEPLOYMENT_URL' => "file://#{origin}")
    expect(ok).to be(true), err
    expect(out).to eq(File.join(@dir, 'cache', 'cf-deployment-v58.0.0'))
    expect(File.read(File.join(out, 'cf-deployment.yml'))).to eq("name: cf\n") # the tag, not the branch tip
    expect(Dir.children(File.join(@dir, 'cache'))).to eq(['cf-deployment-v58.0.0']) # no clone leftovers

    FileUtils.rm_rf(origin)
    expect(find('APP_SSH_CF_DEPLOYMENT_URL' => "file://#{origin}")[0]).to eq(out)
  end

  it 'otherwise fails fast with one line saying how to provide it' do
    started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    out, err, ok = find
    expect(Process.clock_gettime(Process::CLOCK_MONOTONIC) - started).to be < 20
    expect([out, ok]).to eq(['', false])
    error_lines = err.lines.grep(/^error:/)
    expect(error_lines.size).to eq(1)
    expect(error_lines.first).to include('APP_SSH_CF_DEPLOYMENT_DIR').and include('git clone --depth 1 --branch v58.0.0')
      .and include(File.join(@dir, 'work', 'shared', 'cf-deployment'))
    expect(Dir.children(File.join(@dir, 'cache'))).to eq([])
  end

  it 'bounds a clone that hangs by APP_SSH_CLONE_TIMEOUT' do
    server = TCPServer.new('127.0.0.1', 0) # accepts, never answers
    port = server.addr[1]
    started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    _, err, ok = find('APP_SSH_CF_DEPLOYMENT_URL' => "http://127.0.0.1:#{port}/cf-deployment.git", 'APP_SSH_CLONE_TIMEOUT' => '2')
    expect(Process.clock_gettime(Process::CLOCK_MONOTONIC) - started).to be < 15
    expect(ok).to be(false)
    expect(err).to include('could not be cloned')
  ensure
    server&.close
  end
end

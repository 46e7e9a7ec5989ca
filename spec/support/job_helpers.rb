# frozen_string_literal: true

require 'open3'
require 'fileutils'
require 'timeout'

# Helpers shared by the job, manifest and ops-file specs.
module JobHelpers
  T = Bosh::Template::Test

  def self.release
    @release ||= T::ReleaseDir.new(REPO_ROOT)
  end

  # Renders every template of a job into dir (dir/config/..., as on a VM under
  # /var/vcap/jobs/<job>/) and rewrites the job-directory prefix inside the
  # rendered files, so the config's *_file paths point at the rendered files.
  def self.render_job_to(dir, job_name, properties, consumes: [], spec: T::InstanceSpec.new)
    job = release.job(job_name)
    job.spec.fetch('templates').each_value do |dest|
      text = job.template(dest).render(properties, consumes: consumes, spec: spec)
      text = text.gsub("/var/vcap/jobs/#{job_name}/", "#{dir}/")
      path = File.join(dir, dest)
      FileUtils.mkdir_p(File.dirname(path))
      File.write(path, text)
    end
    dir
  end

  # Runs a command with a deadline; returns [output, Process::Status].
  # The child is killed if it outlives the deadline.
  def self.run(argv, timeout: 60)
    out_r, out_w = IO.pipe
    pid = Process.spawn(*argv, out: out_w, err: out_w, in: File::NULL)
    out_w.close
    output = +''
    reader = Thread.new { output << out_r.read }
    status = nil
    begin
      Timeout.timeout(timeout) { _, status = Process.wait2(pid) }
    rescue Timeout::Error
      Process.kill('KILL', pid)
      _, status = Process.wait2(pid)
      output << "\n(killed after #{timeout}s)"
    ensure
      reader.join
      out_r.close
    end
    [output, status]
  end

  def self.bosh_cli
    candidates = [ENV.fetch('BOSH_CLI', nil), File.join(REPO_ROOT, 'bin', 'bosh')].compact
    found = candidates.find { |c| File.executable?(c) }
    raise "bosh CLI not found (looked at #{candidates.join(', ')}); scripts/test builds bin/bosh" if found.nil?

    found
  end

  def self.binary(name)
    path = File.join(REPO_ROOT, 'bin', name)
    raise "#{path} is missing: build it with (cd src && go build -o ../bin/ ./cmd/ssh-proxy ./cmd/sshd)" unless File.executable?(path)

    path
  end

  # cf-deployment v58's reference files: $APP_SSH_CF_DEPLOYMENT_DIR, else ../shared/cf-deployment
  # beside the repository (where CI puts it).
  def self.cf_deployment_dir
    File.expand_path(ENV.fetch('APP_SSH_CF_DEPLOYMENT_DIR', '../shared/cf-deployment'), REPO_ROOT)
  end
end

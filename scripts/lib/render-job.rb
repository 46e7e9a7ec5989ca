# frozen_string_literal: true

# Renders every template of one job of this release, as the BOSH director would, from an
# interpolated manifest (`bosh int` output), using spec/'s Bosh::Template::Test harness.
# Paths under /var/vcap/jobs/<job> are relocated to OUT_DIR, /var/vcap/sys/log/<job> to
# OUT_DIR/log and /var/vcap/packages/<pkg>/bin to BIN_DIR, so the rendered files work on a
# development machine and write nothing outside OUT_DIR. Used by scripts/run-local.
#
#   ruby scripts/lib/render-job.rb MANIFEST INSTANCE_GROUP JOB OUT_DIR BIN_DIR
#
# Writes OUT_DIR/<template destination> (mode 0600, they hold keys) and OUT_DIR/command: the
# first bpm process's executable and arguments, one per line, relocated the same way.

require 'fileutils'
require 'yaml'
require_relative '../../spec/support/bosh_template'

def die(msg)
  warn "render-job: #{msg}"
  exit 2
end

die 'usage: render-job.rb MANIFEST INSTANCE_GROUP JOB OUT_DIR BIN_DIR' unless ARGV.length == 5
manifest_path, group_name, job_name, out_dir, bin_dir = ARGV
repo = File.expand_path('../..', __dir__)
out_dir = File.expand_path(out_dir)
bin_dir = File.expand_path(bin_dir)

manifest = YAML.safe_load(File.read(manifest_path)) || {}
group = Array(manifest['instance_groups']).find { |g| g['name'] == group_name }
die "no instance group #{group_name} in #{manifest_path}" if group.nil?
job_entry = Array(group['jobs']).find { |j| j['name'] == job_name }
die "instance group #{group_name} has no job #{job_name}" if job_entry.nil?
properties = job_entry['properties'] || {}

release = Bosh::Template::Test::ReleaseDir.new(repo)
job = release.job(job_name)
instance = Bosh::Template::Test::InstanceSpec.new(
  address: '127.0.0.1', ip: '127.0.0.1', az: 'local', name: group_name,
  deployment: manifest['name'] || 'app-ssh-local', id: "#{group_name}-local", index: 0
)

relocate = lambda do |text|
  text.gsub("/var/vcap/jobs/#{job_name}", out_dir)
      .gsub("/var/vcap/sys/log/#{job_name}", File.join(out_dir, 'log'))
      .gsub(%r{/var/vcap/packages/[A-Za-z0-9_.-]+/bin}, bin_dir)
end

FileUtils.mkdir_p(File.join(out_dir, 'log'), mode: 0o700)
(job.spec['templates'] || {}).each_value do |dest|
  begin
    text = job.template(dest).render(properties, spec: instance)
  rescue Bosh::Template::UnknownProperty, Bosh::Template::UnknownLink => e
    die "#{job_name}/#{dest}: #{e.message}"
  end
  path = File.join(out_dir, dest)
  FileUtils.mkdir_p(File.dirname(path), mode: 0o700)
  File.write(path, relocate.call(text), perm: 0o600)
  File.chmod(0o600, path)
end

bpm_path = File.join(out_dir, 'config', 'bpm.yml')
die "job #{job_name} renders no config/bpm.yml" unless File.file?(bpm_path)
process = Array((YAML.safe_load(File.read(bpm_path)) || {})['processes']).first
die "#{bpm_path} names no process" if process.nil? || process['executable'].to_s.empty?
command = [process['executable'], *Array(process['args'])].map(&:to_s)
File.write(File.join(out_dir, 'command'), command.join("\n") + "\n", perm: 0o600)

# frozen_string_literal: true

require 'digest'
require 'fileutils'
require 'tmpdir'

# Runs `bosh int` on the shared cf-deployment (../shared/cf-deployment, never copied into
# this repository) or on our standalone manifest, with --vars-store in a temporary directory
# and --var-errs. Generating cf-deployment's ~100 certificates takes the bosh CLI tens of
# seconds, so one store is generated up front (seed_store) and each run starts from a copy of
# it; one example still checks generation from an empty store. Results are cached per
# combination for the length of the rspec run.
module Interpolation
  SYSTEM_DOMAIN = 'sys.example.com'

  Result = Struct.new(:manifest, :output, :success, :vars, keyword_init: true)

  @cache = {}
  @tmp_root = nil

  class << self
    def tmp_root
      @tmp_root ||= Dir.mktmpdir('app-ssh-int').tap { |d| at_exit { FileUtils.rm_rf(d) } }
    end

    def cf(path)
      File.join(JobHelpers.cf_deployment_dir, path)
    end

    def ours(path)
      File.join(REPO_ROOT, path)
    end

    # The run that generates the seed store: cf-deployment + use-app-ssh-release.yml +
    # enable-app-ssh.yml from an empty vars store.
    def seed_result
      @seed_result ||= begin
        store = File.join(tmp_root, 'seed-vars.yml')
        run_int(cf('cf-deployment.yml'), seed_ops, store, vars: { 'system_domain' => SYSTEM_DOMAIN })
      end
    end

    def seed_ops
      [ours('operations/use-app-ssh-release.yml'), ours('operations/enable-app-ssh.yml')]
    end

    def seed_store
      raise "could not generate the seed vars store:\n#{seed_result.output}" unless seed_result.success

      File.join(tmp_root, 'seed-vars.yml')
    end

    # The variables section (bosh int leaves it out once a vars store resolves the
    # variables), read without a vars store.
    def variables(ops)
      @cache[[:variables, ops]] ||= begin
        argv = [JobHelpers.bosh_cli, 'int', cf('cf-deployment.yml')]
        ops.each { |o| argv += ['-o', o] }
        output, status = JobHelpers.run(argv + ['--path', '/variables'], timeout: 300)
        raise "bosh int --path /variables failed:\n#{output}" unless status.success?

        YAML.safe_load(output)
      end
    end

    # ops: list of ops-file paths (absolute); starts from a copy of the seed store.
    def cf_deployment(ops)
      return seed_result if ops == seed_ops

      @cache[[:cf, ops]] ||= begin
        dir = Dir.mktmpdir('run', tmp_root)
        store = File.join(dir, 'vars.yml')
        FileUtils.cp(seed_store, store)
        run_int(cf('cf-deployment.yml'), ops, store, vars: { 'system_domain' => SYSTEM_DOMAIN })
      end
    end

    def standalone
      @cache[:standalone] ||= begin
        dir = Dir.mktmpdir('standalone', tmp_root)
        run_int(ours('manifests/app-ssh.yml'), [], File.join(dir, 'vars.yml'))
      end
    end

    private

    def run_int(manifest, ops, store, vars: {})
      argv = [JobHelpers.bosh_cli, 'int', manifest]
      ops.each { |o| argv += ['-o', o] }
      vars.each { |k, v| argv += ['-v', "#{k}=#{v}"] }
      argv += ['--vars-store', store, '--var-errs']
      output, status = JobHelpers.run(argv, timeout: 300)
      success = status.success?
      Result.new(manifest: success ? YAML.safe_load(output) : nil, output: output, success: success,
                 vars: File.exist?(store) ? YAML.safe_load(File.read(store)) : {})
    end
  end
end

# Lookups in an interpolated manifest.
module ManifestLookup
  module_function

  def group(manifest, name)
    manifest.fetch('instance_groups').find { |g| g['name'] == name }
  end

  def job(manifest, group_name, job_name)
    g = group(manifest, group_name)
    g && (g['jobs'] || []).find { |j| j['name'] == job_name }
  end

  def jobs_named(manifest, job_name)
    manifest.fetch('instance_groups').flat_map do |g|
      (g['jobs'] || []).select { |j| j['name'] == job_name }.map { |j| [g['name'], j] }
    end
  end

  def variable(manifest, name)
    (manifest['variables'] || []).find { |v| v['name'] == name }
  end

  def release(manifest, name)
    (manifest['releases'] || []).find { |r| r['name'] == name }
  end

  # [group, job, release] for every job, for comparing placement between two manifests.
  def placements(manifest)
    manifest.fetch('instance_groups').flat_map do |g|
      (g['jobs'] || []).map { |j| [g['name'], j['name'], j['release']] }
    end
  end

  def dig(hash, dotted)
    dotted.split('.').reduce(hash) { |h, k| h.is_a?(Hash) ? h[k] : nil }
  end
end

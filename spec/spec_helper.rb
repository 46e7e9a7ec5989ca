# frozen_string_literal: true

require 'fileutils'
require 'open3'
require 'socket'
require 'tmpdir'
require 'yaml'

REPO_ROOT = File.expand_path('..', __dir__)
require_relative 'support/bosh_template'
require_relative 'support/job_helpers'
require_relative 'support/interpolation'

T = Bosh::Template::Test

RSpec.configure do |config|
  config.expect_with(:rspec) { |c| c.syntax = :expect }
  config.disable_monkey_patching!
  config.order = :random
  Kernel.srand config.seed
end

# frozen_string_literal: true

# A small stand-in for the bosh-template gem's test API (Bosh::Template::Test),
# written for this repository because the gem cannot be installed here.
#
#   release  = Bosh::Template::Test::ReleaseDir.new(repo_root)
#   job      = release.job('ssh_proxy')
#   template = job.template('config/ssh_proxy.yml')
#   text     = template.render({ 'diego' => { ... } },
#                              consumes: [Bosh::Template::Test::Link.new(name: 'bbs', ...)],
#                              spec: Bosh::Template::Test::InstanceSpec.new(az: 'z1'))
#
# It behaves like the director where the two differ in ways that matter to a
# template author: only properties declared in the job spec reach the template
# (undeclared ones are dropped, as the director drops them), defaults come from
# the spec, a consumed link must be declared in the spec's `consumes`, and the
# error messages read like the director's.

require 'erb'
require 'json'
require 'ostruct'
require 'yaml'

module Bosh
  module Template
    class UnknownProperty < StandardError
      attr_reader :names

      def initialize(names)
        @names = names
        super("Can't find property '#{names.inspect}'")
      end
    end

    class UnknownLink < StandardError
      attr_reader :name

      def initialize(name)
        @name = name
        super("Can't find link '#{name}'")
      end
    end

    # Looks up a dotted name ("a.b.c") in nested hashes; nil when any step is missing.
    module PropertyLookup
      module_function

      def lookup(collection, name)
        name.to_s.split('.').reduce(collection) do |ref, key|
          return nil unless ref.is_a?(Hash)

          ref[key]
        end
      end

      def store(collection, name, value)
        keys = name.to_s.split('.')
        last = keys.pop
        ref = keys.reduce(collection) do |acc, key|
          acc[key] = {} unless acc[key].is_a?(Hash)
          acc[key]
        end
        ref[last] = value
      end

      def deep_copy(value)
        Marshal.load(Marshal.dump(value))
      end

      def stringify(value)
        case value
        when Hash then value.each_with_object({}) { |(k, v), h| h[k.to_s] = stringify(v) }
        when Array then value.map { |v| stringify(v) }
        else value
        end
      end
    end

    # Returned by if_p / if_link: `.else { }` runs only when the condition failed.
    class ActiveElseBlock
      def initialize(context)
        @context = context
      end

      def else
        yield
      end

      def else_if_p(*names, &block)
        @context.if_p(*names, &block)
      end

      def else_if_link(name, &block)
        @context.if_link(name, &block)
      end
    end

    class InactiveElseBlock
      def else; end

      def else_if_p(*_names)
        InactiveElseBlock.new
      end

      def else_if_link(_name)
        InactiveElseBlock.new
      end
    end

    # p / if_p over one properties hash; shared by the template context and links.
    module PropertyAccess
      def p(*args)
        raise ArgumentError, 'p takes a name (or list of names) and an optional default' if args.empty? || args.length > 2

        names = Array(args[0])
        names.each do |name|
          value = PropertyLookup.lookup(property_source, name)
          return value unless value.nil?
        end
        return args[1] if args.length == 2

        raise UnknownProperty, names
      end

      def if_p(*names)
        values = names.map do |name|
          value = PropertyLookup.lookup(property_source, name)
          return ActiveElseBlock.new(self) if value.nil?

          value
        end
        yield(*values)
        InactiveElseBlock.new
      end
    end

    class EvaluationLinkInstance
      attr_reader :name, :index, :id, :az, :address, :bootstrap

      def initialize(name, index, id, az, address, bootstrap)
        @name = name
        @index = index
        @id = id
        @az = az
        @address = address
        @bootstrap = bootstrap
      end
    end

    class EvaluationLink
      include PropertyAccess

      attr_reader :instances, :properties, :name, :type, :address

      def initialize(name:, type:, instances:, properties:, address:)
        @name = name
        @type = type
        @instances = instances
        @properties = properties
        @address = address
      end

      private

      def property_source
        @properties
      end
    end

    # What `self` is inside a template.
    class EvaluationContext
      include PropertyAccess

      attr_reader :spec, :raw_properties, :name, :index, :properties

      def initialize(spec_hash, links)
        @raw_properties = spec_hash['properties'] || {}
        @properties = to_open_struct(@raw_properties)
        @spec = to_open_struct(spec_hash)
        @name = spec_hash['name']
        @index = spec_hash['index']
        @links = links
      end

      def link(name)
        found = @links[name]
        raise UnknownLink, name if found.nil?

        found
      end

      def if_link(name)
        found = @links[name]
        return ActiveElseBlock.new(self) if found.nil?

        yield found
        InactiveElseBlock.new
      end

      def get_binding # rubocop:disable Naming/AccessorMethodName
        binding
      end

      private

      def property_source
        @raw_properties
      end

      def to_open_struct(value)
        case value
        when Hash then OpenStruct.new(value.transform_values { |v| to_open_struct(v) })
        when Array then value.map { |v| to_open_struct(v) }
        else value
        end
      end
    end

    module Test
      class LinkInstance
        attr_reader :name, :index, :id, :az, :address, :bootstrap

        # The same defaults as the director's Bosh::Template::Test::LinkInstance.
        def initialize(name: 'i-name', index: 4, id: 'jkl8098', az: 'az4',
                       address: 'link.instance.address.com', bootstrap: false)
          @name = name
          @index = index
          @id = id
          @az = az
          @address = address
          @bootstrap = bootstrap
        end
      end

      class Link
        attr_reader :name, :type, :instances, :properties, :address

        def initialize(name:, type: nil, instances: [], properties: {}, address: nil)
          @name = name
          @type = type
          @instances = instances
          @properties = PropertyLookup.stringify(properties)
          @address = address
        end
      end

      class InstanceSpec
        FIELDS = %i[address az bootstrap deployment id index ip name networks].freeze

        # The same defaults as the director's Bosh::Template::Test::InstanceSpec, so a spec
        # written against either harness sees the same instance.
        def initialize(address: 'my.bosh.com', az: 'az1', bootstrap: false,
                       deployment: 'my-deployment', id: 'xxxxxx-xxxxxxxx-xxxxx', index: 0,
                       ip: '192.168.0.0', name: 'me',
                       networks: { 'network1' => { 'foo' => 'bar', 'ip' => '192.168.0.0' } })
          @values = {
            'address' => address, 'az' => az, 'bootstrap' => bootstrap,
            'deployment' => deployment, 'id' => id, 'index' => index, 'ip' => ip, 'name' => name,
            'networks' => PropertyLookup.stringify(networks)
          }
        end

        def to_h
          PropertyLookup.deep_copy(@values)
        end
      end

      class ReleaseDir
        attr_reader :path

        def initialize(path)
          @path = File.expand_path(path)
          raise ArgumentError, "no such release directory: #{@path}" unless File.directory?(@path)
        end

        def job(name)
          Job.new(self, name)
        end
      end

      class Job
        attr_reader :name, :spec

        def initialize(release, name)
          @name = name
          @dir = File.join(release.path, 'jobs', name)
          spec_path = File.join(@dir, 'spec')
          raise ArgumentError, "no job spec at #{spec_path}" unless File.file?(spec_path)

          @spec = YAML.safe_load(File.read(spec_path)) || {}
          raise ArgumentError, "job spec #{spec_path} names '#{@spec['name']}', not '#{name}'" if @spec['name'] != name
        end

        # rendered_path is the destination as written in the spec's templates: values.
        def template(rendered_path)
          source, = (@spec['templates'] || {}).find { |_src, dest| dest == rendered_path }
          raise ArgumentError, "job '#{@name}' has no template rendering to '#{rendered_path}'" if source.nil?

          Template.new(self, File.join(@dir, 'templates', source))
        end

        def declared_properties
          @spec['properties'] || {}
        end

        def declared_consumes
          (@spec['consumes'] || []).each_with_object({}) { |c, h| h[c['name']] = c }
        end
      end

      class Template
        attr_reader :path

        def initialize(job, path)
          @job = job
          @path = path
        end

        def render(manifest_properties, consumes: [], spec: InstanceSpec.new)
          raise ArgumentError, "no template file at #{@path}" unless File.file?(@path)

          spec_hash = spec.to_h
          spec_hash['properties'] = job_properties(PropertyLookup.stringify(manifest_properties || {}))
          context = EvaluationContext.new(spec_hash, evaluation_links(consumes))
          erb = ERB.new(File.read(@path), trim_mode: '-')
          erb.filename = @path
          erb.result(context.get_binding)
        end

        private

        # Like the director: every declared property gets the manifest's value,
        # else the spec default; undeclared manifest properties are dropped.
        def job_properties(manifest)
          @job.declared_properties.each_with_object({}) do |(name, definition), props|
            value = PropertyLookup.lookup(manifest, name)
            value = PropertyLookup.deep_copy((definition || {})['default']) if value.nil?
            PropertyLookup.store(props, name, value) unless value.nil?
          end
        end

        def evaluation_links(consumes)
          declared = @job.declared_consumes
          consumes.each_with_object({}) do |link, links|
            decl = declared[link.name]
            raise ArgumentError, "job '#{@job.name}' does not consume a link named '#{link.name}'" if decl.nil?
            if link.type && decl['type'] && link.type != decl['type']
              raise ArgumentError, "link '#{link.name}' has type '#{link.type}', job '#{@job.name}' expects '#{decl['type']}'"
            end

            instances = link.instances.map do |i|
              EvaluationLinkInstance.new(i.name, i.index, i.id, i.az, i.address, i.bootstrap)
            end
            links[link.name] = EvaluationLink.new(name: link.name, type: link.type || decl['type'],
                                                  instances: instances, properties: link.properties,
                                                  address: link.address)
          end
        end
      end
    end
  end
end

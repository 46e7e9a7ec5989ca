# frozen_string_literal: true

# Specs for spec/support/bosh_template.rb, run against the fixture job in
# spec/fixtures/release. Each example pins one behaviour the job templates rely on.
RSpec.describe 'template harness (Bosh::Template::Test stand-in)' do

  let(:release) { T::ReleaseDir.new(File.join(__dir__, 'fixtures', 'release')) }
  let(:job) { release.job('fixture') }
  let(:out) { job.template('config/out.yml') }

  def render_out(props = {}, **kw)
    YAML.safe_load(out.render(props, **kw))
  end

  describe 'p' do
    it 'falls back to the job spec defaults' do
      r = render_out
      expect(r['text']).to eq('hello')
      expect(r['count']).to eq(2)
      expect(r['nested_a']).to eq(1)
    end

    it 'keeps a false default as a value' do
      expect(render_out['enabled']).to be(false)
    end

    it 'prefers manifest values over defaults, with nested lookup' do
      r = render_out({ 'greeting' => { 'text' => 'hi', 'count' => 5, 'enabled' => true } })
      expect(r.values_at('text', 'count', 'enabled')).to eq(['hi', 5, true])
    end

    it 'accepts symbol keys in the properties hash' do
      expect(render_out({ greeting: { text: 'sym' } })['text']).to eq('sym')
    end

    it 'returns the default argument only when the property is unset' do
      expect(render_out['optional_with_default']).to eq('fallback')
      expect(render_out({ 'optional' => { 'name' => 'given' } })['optional_with_default']).to eq('given')
    end

    it 'returns the first set name of an array of names' do
      expect(render_out['alternative']).to eq('from-secondary-default')
      expect(render_out({ 'alt' => { 'primary' => 'first' } })['alternative']).to eq('first')
    end

    it "raises the director's error for an unset property without default" do
      expect { job.template('config/strict.txt').render({}) }
        .to raise_error(Bosh::Template::UnknownProperty, %(Can't find property '["optional.name"]'))
    end

    it 'names every alternative when none of an array of names is set' do
      expect { job.template('config/multi.txt').render({}) }
        .to raise_error(Bosh::Template::UnknownProperty, %(Can't find property '["optional.name", "alt.primary"]'))
    end

    it 'does not pass properties the job spec does not declare, like the director' do
      expect { job.template('config/undeclared.txt').render({ 'not' => { 'declared' => 'x' } }) }
        .to raise_error(Bosh::Template::UnknownProperty, /not\.declared/)
    end

    it 'renders a set property through p' do
      expect(job.template('config/strict.txt').render({ 'optional' => { 'name' => 'n1' } }).strip).to eq('n1')
    end
  end

  describe 'if_p / else' do
    it 'runs the else block when the property is unset' do
      expect(render_out['if_p']).to eq('unset')
    end

    it 'yields the value and skips else when set' do
      expect(render_out({ 'optional' => { 'name' => 'abc' } })['if_p']).to eq('set:abc')
    end

    it 'yields several values, defaults included' do
      expect(render_out['if_p_two']).to eq('hellox2')
    end

    it 'needs every name to be set' do
      expect(render_out['if_p_mixed']).to eq('not-both')
      expect(render_out({ 'optional' => { 'name' => 'x' } })['if_p_mixed']).to eq('both')
    end
  end

  describe 'links' do
    let(:db_link) do
      T::Link.new(
        name: 'db', type: 'database', address: 'q-s0.db.default.dep.bosh',
        properties: { 'port' => 5432 },
        instances: [
          T::LinkInstance.new(name: 'db', index: 0, id: 'id-0', az: 'z1', address: '10.0.0.1', bootstrap: true),
          T::LinkInstance.new(name: 'db', index: 1, id: 'id-1', az: 'z2', address: '10.0.0.2', bootstrap: false)
        ]
      )
    end

    it 'takes the else branch of if_link when the link is absent' do
      expect(render_out['db']).to eq('no-link')
    end

    it 'exposes instances, link address and link properties' do
      db = render_out({}, consumes: [db_link])['db']
      expect(db['addresses']).to eq(%w[10.0.0.1 10.0.0.2])
      expect(db['names']).to eq(%w[db db])
      expect(db['ids']).to eq(%w[id-0 id-1])
      expect(db['indexes']).to eq([0, 1])
      expect(db['azs']).to eq(%w[z1 z2])
      expect(db['bootstraps']).to eq([true, false])
      expect(db['group_address']).to eq('q-s0.db.default.dep.bosh')
      expect(db['port']).to eq(5432)
    end

    it 'lets an explicit property win over a link property' do
      expect(render_out({ 'db' => { 'port' => 6000 } }, consumes: [db_link])['db']['port']).to eq(6000)
    end

    it 'supports p with a default and if_p on link properties' do
      db = render_out({}, consumes: [db_link])['db']
      expect(db['tls']).to eq('default-tls')
      expect(db['if_p_tls']).to eq('absent')

      tls_link = T::Link.new(name: 'db', properties: { 'port' => 1, 'tls' => { 'enabled' => false } })
      db = render_out({}, consumes: [tls_link])['db']
      expect(db['tls']).to be(false)
      expect(db['if_p_tls']).to be(false)
    end

    it "raises the director's error when link() names a link that was not provided" do
      expect { job.template('config/cache.txt').render({}) }
        .to raise_error(Bosh::Template::UnknownLink, "Can't find link 'cache'")
    end

    it 'renders link() when provided' do
      cache = T::Link.new(name: 'cache', type: 'cache', instances: [T::LinkInstance.new(address: 'c1')])
      expect(job.template('config/cache.txt').render({}, consumes: [cache]).strip).to eq('c1')
    end

    it 'refuses links the job does not consume, and links of the wrong type' do
      expect { out.render({}, consumes: [T::Link.new(name: 'nope')]) }.to raise_error(ArgumentError, /nope/)
      expect { out.render({}, consumes: [T::Link.new(name: 'db', type: 'cache')]) }.to raise_error(ArgumentError, /type/)
    end
  end

  describe 'spec' do
    it 'exposes the instance spec fields' do
      s = T::InstanceSpec.new(address: 'a.example', id: 'uuid-1', index: 3, az: 'z9', bootstrap: false,
                              deployment: 'dep', name: 'grp', ip: '10.1.2.3',
                              networks: { 'default' => { 'ip' => '10.1.2.3' } })
      r = YAML.safe_load(job.template('config/instance.yml').render({}, spec: s))
      expect(r).to eq('address' => 'a.example', 'id' => 'uuid-1', 'index' => 3, 'az' => 'z9',
                      'bootstrap' => false, 'deployment' => 'dep', 'name' => 'grp', 'ip' => '10.1.2.3',
                      'network_ip' => '10.1.2.3', 'top_name' => 'grp', 'top_index' => 3)
    end
  end

  describe 'defaults' do
    # A spec must behave the same under this harness and the director's Bosh::Template::Test,
    # so the instance and link-instance defaults are the director's, field for field.
    it "gives the director's InstanceSpec defaults" do
      expect(T::InstanceSpec.new.to_h).to eq(
        'address' => 'my.bosh.com', 'az' => 'az1', 'bootstrap' => false, 'deployment' => 'my-deployment',
        'id' => 'xxxxxx-xxxxxxxx-xxxxx', 'index' => 0, 'ip' => '192.168.0.0', 'name' => 'me',
        'networks' => { 'network1' => { 'foo' => 'bar', 'ip' => '192.168.0.0' } }
      )
    end

    it "gives the director's LinkInstance defaults" do
      i = T::LinkInstance.new
      expect([i.name, i.id, i.index, i.az, i.address, i.bootstrap]).to eq(
        ['i-name', 'jkl8098', 4, 'az4', 'link.instance.address.com', false]
      )
    end
  end

  describe 'lookup errors in the harness itself' do
    it 'refuses an unknown template path and an unknown job' do
      expect { job.template('config/nope.yml') }.to raise_error(ArgumentError, /nope/)
      expect { release.job('nope') }.to raise_error(ArgumentError, /nope/)
    end
  end
end

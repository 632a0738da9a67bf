-- The name registry.
local troupe = require "troupe"
local helpers = require "spec_helpers"

local Named = troupe.behaviour("Named", {
  hi = function(self) return "hi" end,
  reg = function(self, name) return troupe.register(name, troupe.self()) end,
  lookup = function(self, name) return troupe.whereis(name) end,
})

local raised = helpers.raised

describe("names", function()
  after_each(function()
    for _, n in ipairs({ "bank", "other", "alias", "dup", "spawned", "inner" }) do
      troupe.unregister(n)
    end
  end)

  it("register, whereis, unregister", function()
    local a = troupe.spawn(Named)
    assert.is_nil(troupe.whereis("bank"))
    assert.is_true(troupe.register("bank", a))
    local w = troupe.whereis("bank")
    assert.is_true(w == a)
    assert.equals("hi", w:call("hi"))
    assert.matches('^<actor %d+ Named "bank">$', tostring(a))
    assert.is_true(troupe.unregister("bank"))
    assert.is_nil(troupe.whereis("bank"))
    assert.is_false(troupe.unregister("bank"))
    assert.matches("^<actor %d+ Named>$", tostring(a))
  end)

  it("a duplicate name raises exists; the first owner keeps it", function()
    local a = troupe.spawn(Named)
    local b = troupe.spawn(Named)
    troupe.register("dup", a)
    local e = raised(troupe.register, "dup", b)
    assert.is_true(troupe.is_error(e))
    assert.equals("exists", e.code)
    assert.matches("dup", e.message)
    assert.is_true(troupe.whereis("dup") == a)
    -- registering the same actor again under its own name is fine
    assert.is_true(troupe.register("dup", a))
  end)

  it("one actor may have several names", function()
    local a = troupe.spawn(Named)
    troupe.register("bank", a)
    troupe.register("alias", a)
    assert.is_true(troupe.whereis("bank") == a)
    assert.is_true(troupe.whereis("alias") == a)
    troupe.unregister("bank")
    assert.is_true(troupe.whereis("alias") == a)
  end)

  it("a dead actor's names vanish and can be reused", function()
    local a = troupe.spawn(Named)
    troupe.register("bank", a)
    troupe.register("alias", a)
    a:kill()
    assert.is_nil(troupe.whereis("bank"))
    assert.is_nil(troupe.whereis("alias"))
    local b = troupe.spawn(Named)
    assert.is_true(troupe.register("bank", b))
    assert.is_true(troupe.whereis("bank") == b)
  end)

  it("names vanish after a graceful stop and after a crash", function()
    local a = troupe.spawn(Named)
    troupe.register("bank", a)
    a:stop()
    troupe.sleep(5)
    assert.is_nil(troupe.whereis("bank"))
    local c = troupe.spawn({ boom = function() error("x") end })
    troupe.register("other", c)
    pcall(c.call, c, "boom")
    assert.is_nil(troupe.whereis("other"))
  end)

  it("a dead actor cannot be registered", function()
    local a = troupe.spawn(Named)
    a:kill()
    local e = raised(troupe.register, "bank", a)
    assert.equals("dead", e.code)
    assert.is_nil(troupe.whereis("bank"))
  end)

  it("spawn_with a name registers it; a taken name refuses the spawn", function()
    local before = troupe.stats().actors
    local a = troupe.spawn_with({ name = "spawned" }, Named)
    assert.is_true(troupe.whereis("spawned") == a)
    local e = raised(troupe.spawn_with, { name = "spawned" }, Named)
    assert.equals("exists", e.code)
    assert.equals(before + 1, troupe.stats().actors)
    assert.is_true(troupe.whereis("spawned") == a)
  end)

  it("actors register themselves and look others up", function()
    local a = troupe.spawn(Named)
    local b = troupe.spawn(Named)
    assert.is_true(a:call("reg", "inner"))
    local found = b:call("lookup", "inner")
    assert.is_true(found == a)
    assert.is_nil(b:call("lookup", "nobody"))
  end)

  it("names are strings", function()
    local a = troupe.spawn(Named)
    assert.has_error(function() troupe.register({}, a) end)
    assert.has_error(function() troupe.register("x", "not an address") end)
    assert.has_error(function() troupe.register("", a) end)
  end)
end)

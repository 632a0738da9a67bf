-- The Account behaviour: a bank account holding a balance.
-- Each handler gets the actor's private state as `self`.
local troupe = require "troupe"

local Account = { _NAME = "Account" }

function Account.init(self, balance)
  self.balance = balance or 0
end

function Account.deposit(self, amount)
  assert(math.type(amount) == "integer" and amount > 0, "deposit needs a positive integer")
  self.balance = self.balance + amount
  return self.balance
end

function Account.withdraw(self, amount)
  assert(math.type(amount) == "integer" and amount > 0, "withdraw needs a positive integer")
  if amount > self.balance then
    -- the handler's own error: a value for the caller, not a crash
    return troupe.fail { reason = "insufficient funds", requested = amount,
                         available = self.balance }
  end
  self.balance = self.balance - amount
  return self.balance
end

function Account.balance(self)
  return self.balance
end

return Account

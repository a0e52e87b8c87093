-- busted output handler: plainTerminal output, then one plain closing line
-- "N passed, N failed" so that a run which executed nothing is visible.
return function(options)
  local busted = require 'busted'
  local handler = require 'busted.outputHandlers.plainTerminal'(options)
  busted.subscribe({ 'suite', 'end' }, function()
    io.write(string.format('\n%d passed, %d failed\n',
      handler.successesCount, handler.failuresCount + handler.errorsCount))
    io.flush()
    return nil, true
  end)
  return handler
end

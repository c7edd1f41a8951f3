-- Pipelining for wrk: `wrk -s pipeline.lua URL -- DEPTH` writes DEPTH requests at a time
-- (wrk then waits for DEPTH responses before writing the next batch).
init = function(args)
   local depth = tonumber(args[1]) or 1
   local r = {}
   for i = 1, depth do
      r[i] = wrk.format()
   end
   req = table.concat(r)
end

request = function()
   return req
end

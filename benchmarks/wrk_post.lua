-- wrk script for the serving benchmark: POST JSON bodies, one per line of a file, in turn.
--
--   wrk -t1 -c8 -d15s --latency -s benchmarks/wrk_post.lua http://127.0.0.1:3000/rank -- bodies.jsonl
--
-- Each wrk thread reads the file once (init runs per thread) and cycles through its lines.

local bodies = {}
local i = 0

function init(args)
  for line in io.lines(args[1]) do
    if #line > 0 then bodies[#bodies + 1] = line end
  end
  if #bodies == 0 then error("no request bodies in " .. tostring(args[1])) end
end

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

function request()
  i = i % #bodies + 1
  return wrk.format(nil, nil, nil, bodies[i])
end

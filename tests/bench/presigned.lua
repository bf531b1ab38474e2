-- wrk script for tests/bench/ack_bench.py: send pre-signed Slack requests, each once.
-- Arguments (after wrk's `--`): a file of "timestamp<TAB>signature<TAB>body" lines, and the
-- number of wrk threads; thread k sends lines k, k + threads, k + 2 * threads, ...
local next_thread = 0

function setup(thread)
  thread:set("thread_number", next_thread)
  next_thread = next_thread + 1
end

function init(args)
  local listing, threads = args[1], tonumber(args[2])
  prepared = {}
  local line_number = 0
  for line in io.lines(listing) do
    if line_number % threads == thread_number then
      local timestamp, signature, body = line:match("^([^\t]*)\t([^\t]*)\t(.*)$")
      prepared[#prepared + 1] = wrk.format("POST", nil, {
        ["Content-Type"] = "application/x-www-form-urlencoded",
        ["X-Slack-Request-Timestamp"] = timestamp,
        ["X-Slack-Signature"] = signature,
      }, body)
    end
    line_number = line_number + 1
  end
  sent = 0
end

function request()
  sent = sent + 1
  -- Past the end a request would repeat a signature: the edge refuses it (counted as non-2xx).
  return prepared[((sent - 1) % #prepared) + 1]
end

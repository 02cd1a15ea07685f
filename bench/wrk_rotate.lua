-- wrk script for make bench: each request takes the next line of a request file
-- ("METHOD<TAB>PATH<TAB>TOKEN<TAB>BODY<TAB>EXTRA-HEADER"), so every simulated buyer
-- sends its own JWT. With ONCE=1 each line is used once and the thread stops after its
-- share (used for confirms: a booking can only be made once). Status codes are counted
-- per thread and reported as JSON on the last line ("WRKSTATUS {...}").
local threads = {}
local lines = {}
local counter = 0

local function split(line)
  local fields = {}
  for field in (line .. "\t"):gmatch("([^\t]*)\t") do table.insert(fields, field) end
  return fields
end

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  local path = os.getenv("WRK_REQUESTS")
  for line in io.lines(path) do table.insert(lines, split(line)) end
  nthreads = tonumber(os.getenv("WRK_THREADS") or "1")
  once = os.getenv("ONCE") == "1"
  -- Each thread walks its own slice so ONCE never sends a line twice.
  counter = id
  statuses = {}
end

function request()
  if once and counter >= #lines then
    wrk.thread:stop()
  end
  local fields = lines[(counter % #lines) + 1]
  counter = counter + nthreads
  local headers = {}
  if fields[3] ~= "" then headers["Authorization"] = "Bearer " .. fields[3] end
  if fields[4] ~= "" then headers["Content-Type"] = "application/json" end
  if fields[5] ~= nil and fields[5] ~= "" then
    local name, value = fields[5]:match("([^:]+):%s*(.*)")
    headers[name] = value
  end
  local body = nil
  if fields[4] ~= "" then body = fields[4] end
  return wrk.format(fields[1], fields[2], headers, body)
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local totals = {}
  for _, thread in ipairs(threads) do
    local counts = thread:get("statuses")
    for status, count in pairs(counts) do
      totals[status] = (totals[status] or 0) + count
    end
  end
  local parts = {}
  for status, count in pairs(totals) do table.insert(parts, string.format('"%d": %d', status, count)) end
  io.write(string.format(
    'WRKSTATUS {"statuses": {%s}, "p50_ms": %.3f, "p99_ms": %.3f, "requests": %d, "duration_s": %.3f}\n',
    table.concat(parts, ", "), latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.requests, summary.duration / 1e6))
end

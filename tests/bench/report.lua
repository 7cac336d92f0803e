-- wrk script: prints one machine-readable line after the run (latencies in µs).
-- With HOSTS set (wrk ... -- HOSTS), every request picks a Host at random among
-- h1.bench.test .. hHOSTS.bench.test; with HOSTS = 1 it always sends bench.test,
-- through the same code path, so that both cost wrk the same.

local hosts = nil

function init(args)
   local n = tonumber(args[1] or "0")
   if n and n > 0 then
      hosts = {}
      if n == 1 then
         hosts[1] = "bench.test"
      else
         for i = 1, n do hosts[i] = "h" .. i .. ".bench.test" end
      end
      math.randomseed(os.time())
      local count = n
      request = function()
         return wrk.format(nil, nil, { Host = hosts[math.random(count)] })
      end
   end
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      "BENCH requests=%d duration_us=%d bytes=%d err_connect=%d err_read=%d err_write=%d err_status=%d err_timeout=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d\n",
      summary.requests, summary.duration, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end

-- wrk script for bench/consultation.py: one urlencoded consultation POST per request.
--
-- wrk ... -s consultation.lua URL -- PATH CSRF_TOKEN STATIC_BODY TAG THREADS [CAPTCHA_KEYS_FILE CAPTCHA_ANSWER]
--
-- Every request carries the CSRF cookie + form token obtained by one GET of the form (Django
-- accepts one pair for many posts), a fresh random submission token (uuid4) and a unique
-- e-mail address (so every privacy-path request creates a new person with a new data key).
-- With a CAPTCHA keys file, thread N of T uses lines N+1, N+1+T, ... : each challenge once.

local counter = 0
local threads = 0
local keys = {}
local nkeys = 0

function setup(thread)
   thread:set("id", threads)
   threads = threads + 1
end

local function uuid4()
   local b = {}
   for i = 1, 16 do
      b[i] = math.random(0, 255)
   end
   b[7] = 64 + b[7] % 16 -- version 4
   b[9] = 128 + b[9] % 64 -- RFC 4122 variant
   return string.format("%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", unpack(b))
end

function init(args)
   path = args[1]
   static_body = args[3]
   tag = args[4]
   local nthreads = tonumber(args[5])
   answer = args[7]
   headers = {
      ["Host"] = wrk.headers["Host"],
      ["Content-Type"] = "application/x-www-form-urlencoded",
      ["Cookie"] = "csrftoken=" .. args[2],
   }
   math.randomseed(os.time() * 1000 + id * 7919 + (tonumber(tag) or 0) % 100000)
   if args[6] and args[6] ~= "" then
      local line_no = 0
      for line in io.lines(args[6]) do
         if line_no % nthreads == id then
            nkeys = nkeys + 1
            keys[nkeys] = line
         end
         line_no = line_no + 1
      end
   end
end

function request()
   counter = counter + 1
   local body = static_body
      .. "&email=bench." .. tag .. "." .. id .. "." .. counter .. "%40example.com"
      .. "&phone=139" .. string.format("%08d", (id * 10000000 + counter) % 100000000)
      .. "&submission_token=" .. uuid4()
   if nkeys > 0 then
      -- Past the last challenge the keys repeat: the server refuses them (400) and the run is
      -- reported as failed, never silently measured.
      body = body .. "&captcha_0=" .. keys[(counter - 1) % nkeys + 1] .. "&captcha_1=" .. answer
   end
   return wrk.format("POST", path, headers, body)
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      "BENCH_RESULT requests=%d duration_us=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d "
         .. "connect=%d read=%d write=%d status=%d timeout=%d\n",
      summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
      latency:percentile(99), latency.max, e.connect, e.read, e.write, e.status, e.timeout))
end

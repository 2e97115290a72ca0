-- wrk script of tests/bench/run-all: one request generator for every workload, chosen by
-- the environment, and a done() that prints one machine-readable line:
--   RESULT requests=N duration_us=N p50=US p99=US p999=US non2xx=N errors=N
--
-- BENCH_MODE   fixed    the URL given to wrk, as is (default)
--              uniform  GET /posts/<id>, ids uniformly at random from $BENCH_IDS
--              zipf     GET /posts/<id> with ids drawn from Zipf($BENCH_ZIPF_S) over the
--                       ids of $BENCH_IDS (rank k has weight 1/k^s; rank 1 = first line),
--                       $BENCH_WRITE_PCT percent of them PUT /posts/<id> instead
--              list     GET /posts?limit=20
--              seq      GET /posts/<id> for every id of $BENCH_IDS in file order, cycling
--                       (cache warm-up)
-- BENCH_IDS    file with one post id a line        BENCH_TOKEN  bearer token for writes
-- BENCH_SEED   random seed (default 42)            BENCH_WRITE_PCT  0..100 (default 0)
-- BENCH_ZIPF_S Zipf exponent (default 0.99)
local mode = os.getenv("BENCH_MODE") or "fixed"
local seed = tonumber(os.getenv("BENCH_SEED") or "42")
local write_pct = tonumber(os.getenv("BENCH_WRITE_PCT") or "0")
local s = tonumber(os.getenv("BENCH_ZIPF_S") or "0.99")
math.randomseed(seed)

local ids, cdf = {}, {}
if mode == "uniform" or mode == "zipf" or mode == "seq" then
    local f = assert(io.open(assert(os.getenv("BENCH_IDS"), "BENCH_IDS not set"), "r"))
    for line in f:lines() do
        if #line > 0 then ids[#ids + 1] = line end
    end
    f:close()
    assert(#ids > 0, "no ids")
    if mode == "zipf" then
        local sum = 0
        for k = 1, #ids do
            sum = sum + 1 / k ^ s
            cdf[k] = sum
        end
        for k = 1, #ids do cdf[k] = cdf[k] / sum end
    end
end

local function zipf_index()
    local u = math.random()
    local lo, hi = 1, #cdf
    while lo < hi do
        local mid = math.floor((lo + hi) / 2)
        if cdf[mid] < u then lo = mid + 1 else hi = mid end
    end
    return lo
end

local put_headers = {
    ["Authorization"] = "Bearer " .. (os.getenv("BENCH_TOKEN") or ""),
    ["Content-Type"] = "application/json",
}
local put_body = '{"title":"updated by run-all","author":"bench","tags":["bench","zipf"],"body":"'
    .. string.rep("z", 900) .. '"}'

if mode == "uniform" then
    request = function()
        return wrk.format("GET", "/posts/" .. ids[math.random(#ids)])
    end
elseif mode == "zipf" then
    request = function()
        local id = ids[zipf_index()]
        if write_pct > 0 and math.random() * 100 < write_pct then
            return wrk.format("PUT", "/posts/" .. id, put_headers, put_body)
        end
        return wrk.format("GET", "/posts/" .. id)
    end
elseif mode == "seq" then
    local i = 0
    request = function()
        i = i % #ids + 1
        return wrk.format("GET", "/posts/" .. ids[i])
    end
elseif mode == "list" then
    request = function()
        return wrk.format("GET", "/posts?limit=20")
    end
end

done = function(summary, latency, requests)
    local e = summary.errors
    io.write(string.format("RESULT requests=%d duration_us=%d p50=%d p99=%d p999=%d non2xx=%d errors=%d\n",
        summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
        latency:percentile(99.9), e.status, e.connect + e.read + e.write + e.timeout))
end

-- GET /posts/{id} over random ids read from the file named by $BENCH_IDS (one id a line).
local ids = {}
local f = assert(io.open(os.getenv("BENCH_IDS"), "r"))
for line in f:lines() do ids[#ids + 1] = line end
f:close()
math.randomseed(os.time())

request = function()
    return wrk.format("GET", "/posts/" .. ids[math.random(#ids)])
end

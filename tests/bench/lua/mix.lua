-- 95% GET /posts/{id}, 5% PUT /posts/{id} (full replacement, no If-Match) over random ids.
local ids = {}
local f = assert(io.open(os.getenv("BENCH_IDS"), "r"))
for line in f:lines() do ids[#ids + 1] = line end
f:close()
math.randomseed(os.time() + 1)

local headers = {
    ["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN"),
    ["Content-Type"] = "application/json",
}
local body = '{"title":"updated by the bench","author":"bench","tags":["bench","mix"],"body":"'
    .. string.rep("u", 900) .. '"}'

request = function()
    local id = ids[math.random(#ids)]
    if math.random(100) <= 5 then
        return wrk.format("PUT", "/posts/" .. id, headers, body)
    end
    return wrk.format("GET", "/posts/" .. id)
end

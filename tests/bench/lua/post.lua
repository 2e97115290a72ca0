-- POST /posts with a ~1 KiB post.
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"title":"a post from the bench","author":"bench","tags":["bench"],"body":"'
    .. string.rep("p", 900) .. '"}'

wrk.method = "POST"
wrk.body = [==[{"platform":"Facebook","content_url":"https://www.facebook.com/x/posts/1","content_text":"hello you idiot","author_name":"Sam","author_email":"sam@example.net","rule_codes":["3a"],"explanation":"Personal attack."}]==]
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer "

-- wrk script: GET /api/v1/parties/nearby at points spread over Seoul, Busan and Daejeon,
-- nearest 20 within 10 km. Deterministic (seeded) so runs are comparable.
math.randomseed(42)
local centers = { {37.5665, 126.9780}, {35.1796, 129.0756}, {36.3504, 127.3845} }
local paths = {}
for i = 1, 1000 do
  local c = centers[(i % 3) + 1]
  local lat = c[1] + (math.random() - 0.5) * 0.2
  local lng = c[2] + (math.random() - 0.5) * 0.2
  paths[i] = string.format("/api/v1/parties/nearby?lat=%.6f&lng=%.6f&radius_m=10000&limit=20", lat, lng)
end
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", paths[(n % #paths) + 1])
end

-- cellgate remote decision script, protocol 2. The argument and record layouts, and the proof
-- that every number below is an exact integer, are in core/src/remote.rs (module docs).
-- KEYS[1]: the record. ARGV[1]: the limiter's parameters. ARGV[2]: this call.
-- Reply: { now (8 bytes), the record read, the record after } ("" for no record).
--
-- Every u64 is a pair of Lua numbers (h, l), each an integer in [0, 2^32): h * 2^32 + l.
local P16, P32, P53 = 65536, 4294967296, 9007199254740992
local MH, ML = P32 - 1, P32 - 1
local byte, sub, len, rep, concat, format, floor, call, pack, unpack =
  string.byte, string.sub, string.len, string.rep, table.concat, string.format, math.floor,
  redis.call, struct.pack, struct.unpack

-- Bytes and pairs: Redis's `struct` library reads each 4 big-endian bytes ('>I') as an
-- unsigned integer below 2^32 (exact in a double), and writes such an integer back as its 4
-- bytes, in C. A u64 is two of them, (h, l). (`unpack` also returns the next position, which
-- the assignments below drop.)

-- a > b
local function gt(ah, al, bh, bl) return ah > bh or (ah == bh and al > bl) end

-- a + b, saturating at 2^64 - 1.
local function add(ah, al, bh, bl)
  local h, l = ah + bh, al + bl
  if l >= P32 then l = l - P32; h = h + 1 end
  if h >= P32 then return MH, ML end
  return h, l
end

-- a - b, or 0 when b >= a.
local function dif(ah, al, bh, bl)
  if ah < bh or (ah == bh and al <= bl) then return 0, 0 end
  local h, l = ah - bh, al - bl
  if l < 0 then l = l + P32; h = h - 1 end
  return h, l
end

-- a * b, saturating at 2^64 - 1.
local function mul(ah, al, bh, bl)
  if ah ~= 0 then
    if bh ~= 0 then return MH, ML end
    ah, al, bh, bl = bh, bl, ah, al
  end
  -- a = al < 2^32 from here.
  if bh == 0 then
    local p = al * bl
    if p < P53 then
      local l = p % P32
      return (p - l) / P32, l
    end
  end
  local a0 = al % P16
  local t0, t1 = a0 * bl, (al - a0) / P16 * bl
  local t1l = t1 % P16
  local low = t0 + t1l * P16
  local l = low % P32
  local h = (t1 - t1l) / P16 + (low - l) / P32
  if bh ~= 0 then
    local u = al * bh
    if u >= P32 then return MH, ML end
    h = h + u
  end
  if h >= P32 then return MH, ML end
  return h, l
end

-- floor(a / d) for d > 0 (interval refill only): in doubles below 2^53, else bit by bit.
local function div(ah, al, dh, dl)
  if ah < 2097152 and dh < 2097152 then
    local q = floor((ah * P32 + al) / (dh * P32 + dl))
    local l = q % P32
    return (q - l) / P32, l
  end
  local qh, ql, rh, rl, top = 0, 0, 0, 0, 0
  for bit = 63, 0, -1 do
    -- r = 2r + bit `bit` of a; top holds the bit shifted out of rh (r < 2^65).
    local ab
    if bit >= 32 then ab = floor(ah / 2 ^ (bit - 32)) % 2 else ab = floor(al / 2 ^ bit) % 2 end
    rl = rl * 2 + ab
    rh = rh * 2
    if rl >= P32 then rl = rl - P32; rh = rh + 1 end
    top = 0
    if rh >= P32 then rh = rh - P32; top = 1 end
    if top == 1 or not gt(dh, dl, rh, rl) then
      rh, rl = rh - dh, rl - dl
      if rl < 0 then rl = rl + P32; rh = rh - 1 end
      if rh < 0 then rh = rh + P32 end
      if bit >= 32 then qh = qh + 2 ^ (bit - 32) else ql = ql + 2 ^ bit end
    end
  end
  return qh, ql
end

local params, argv, key = ARGV[1], ARGV[2], KEYS[1]
if byte(params, 1) ~= 2 then
  return redis.error_reply('ERR cellgate: unknown parameter version')
end
local n = byte(params, 2)
local interval = byte(params, 3) == 1
local single = byte(params, 4) == 1
local fingerprint = sub(params, 5, 12)
local gh, gl = unpack('>I>I', params, 13)
local grace_ms = gh * P32 + gl
-- Per quota i, at R[12(i-1) + 1..12]: capacity, units per cost, ticks per ns, period, rate,
-- the debt a block leaves (0: no block), each as (h, l). (Flat arrays: a table costs more
-- than its arithmetic here.)
-- (One `unpack` into a table constructor: the array is sized once; the value after the
-- last is `unpack`'s next position, unused.)
local R = { unpack(rep('>I', 12 * n), params, 21) }
local blocking = false
for i = 1, n do
  local r = (i - 1) * 12
  if R[r + 11] ~= 0 or R[r + 12] ~= 0 then blocking = true end
end

local op = byte(argv, 1)
local nh, nl
if byte(argv, 2) == 1 then
  nh, nl = unpack('>I>I', argv, 3)
else
  local t = call('TIME')
  local us = tonumber(t[1]) * 1000000 + tonumber(t[2])
  if us >= P53 then
    return redis.error_reply('ERR cellgate: TIME beyond 2^53 microseconds')
  end
  local ul = us % P32
  nh, nl = mul((us - ul) / P32, ul, 0, 1000)
end
-- Per quota i, at C[4(i-1) + 1..4]: the cost (for settle, the refund), the extra charge.
local C = { unpack(rep('>I', 4 * n), argv, 11) }

-- The record: fingerprint, then per quota last_ns and missing; last_ns = 2^64 - 1 marks a
-- quota that holds nothing for this key (a full bucket, as a table without the key).
local old = call('GET', key)
if not old then old = '' end
-- Per quota i, at S[5(i-1) + 1..5]: whether it holds a state, last_ns (h, l), missing (h, l).
local S = {}
local valid = len(old) == 8 + 16 * n and sub(old, 1, 8) == fingerprint
local any = false
for i = 1, n do
  local o = (i - 1) * 5
  S[o + 1], S[o + 2], S[o + 3], S[o + 4], S[o + 5] = false, 0, 0, 0, 0
  if valid then
    local h, l, mh, ml = unpack('>I>I>I>I', old, 9 + (i - 1) * 16)
    if h ~= MH or l ~= ML then
      any = true
      S[o + 1], S[o + 2], S[o + 3], S[o + 4], S[o + 5] = true, h, l, mh, ml
    end
  end
end

local CHECK, PEEK, FORCE, REFUND, RESET, SETTLE = 1, 2, 3, 4, 5, 6
local changed = false

-- Quota i brought forward to max(now, last) (Rule::refilled): that time, and missing then.
local function refilled(i)
  local o, r = (i - 1) * 5, (i - 1) * 12
  local lh, ll = S[o + 2], S[o + 3]
  local th, tl = nh, nl
  if gt(lh, ll, nh, nl) then th, tl = lh, ll end
  local rh, rl
  if interval then
    local qh, ql = div(th, tl, R[r + 7], R[r + 8])
    local ph, pl = div(lh, ll, R[r + 7], R[r + 8])
    rh, rl = dif(qh, ql, ph, pl)
    rh, rl = mul(rh, rl, R[r + 9], R[r + 10])
  else
    rh, rl = dif(th, tl, lh, ll)
    rh, rl = mul(rh, rl, R[r + 5], R[r + 6])
  end
  local xh, xl = dif(S[o + 4], S[o + 5], rh, rl)
  return th, tl, xh, xl
end

-- Rule::decide on quota i, then a table's write: a key it does not hold is stored only to
-- hold less than a full bucket. Returns whether admitted.
local function run(i, ch, cl, what)
  local o, r = (i - 1) * 5, (i - 1) * 12
  local th, tl, xh, xl = refilled(i)
  local wh, wl
  if what == CHECK or what == PEEK then
    local uh, ul = mul(ch, cl, R[r + 3], R[r + 4])
    local fh, fl = add(xh, xl, uh, ul)
    if gt(fh, fl, R[r + 1], R[r + 2]) then return false end
    if what == PEEK or (ch == 0 and cl == 0) then return true end
    wh, wl = fh, fl
  elseif what == FORCE then
    local uh, ul = mul(ch, cl, R[r + 3], R[r + 4])
    wh, wl = add(xh, xl, uh, ul)
  elseif what == REFUND then
    local uh, ul = mul(ch, cl, R[r + 3], R[r + 4])
    wh, wl = dif(xh, xl, uh, ul)
  else
    wh, wl = 0, 0
  end
  if S[o + 1] or wh ~= 0 or wl ~= 0 then
    S[o + 1], S[o + 2], S[o + 3], S[o + 4], S[o + 5] = true, th, tl, wh, wl
    changed = true
  end
  return true
end

-- Rule::block on quota i after a refused check of cost (ch, cl): unless the cost is above the
-- burst, or the bucket it holds is in debt already, it is left empty plus the block's debt.
local function block(i, ch, cl)
  local o, r = (i - 1) * 5, (i - 1) * 12
  if not S[o + 1] then return end
  local uh, ul = mul(ch, cl, R[r + 3], R[r + 4])
  if gt(uh, ul, R[r + 1], R[r + 2]) then return end
  local th, tl, xh, xl = refilled(i)
  if gt(xh, xl, R[r + 1], R[r + 2]) then return end
  local wh, wl = add(R[r + 1], R[r + 2], R[r + 11], R[r + 12])
  S[o + 1], S[o + 2], S[o + 3], S[o + 4], S[o + 5] = true, th, tl, wh, wl
  changed = true
end

if op == CHECK then
  if single then
    if not run(1, C[1], C[2], CHECK) and blocking then block(1, C[1], C[2]) end
  else
    local saved = {}
    for k = 1, 5 * n do saved[k] = S[k] end
    local refused = false
    for i = 1, n do
      local c = (i - 1) * 4
      if (C[c + 1] ~= 0 or C[c + 2] ~= 0) and not run(i, C[c + 1], C[c + 2], CHECK) then
        S = saved
        changed = false
        refused = true
        break
      end
    end
    if refused and blocking then
      -- As core: every quota whose own check of its cost refuses is blocked.
      for i = 1, n do
        local c = (i - 1) * 4
        if not run(i, C[c + 1], C[c + 2], PEEK) then block(i, C[c + 1], C[c + 2]) end
      end
    end
  end
elseif op == PEEK then
  -- nothing is written
elseif op == FORCE or op == REFUND or op == RESET then
  for i = 1, n do run(i, C[4 * i - 3], C[4 * i - 2], op) end
elseif op == SETTLE then
  if single then
    run(1, C[1], C[2], REFUND)
    if C[3] ~= 0 or C[4] ~= 0 then run(1, C[3], C[4], FORCE) end
  else
    for i = 1, n do run(i, C[4 * i - 3], C[4 * i - 2], REFUND) end
    for i = 1, n do run(i, C[4 * i - 1], C[4 * i], FORCE) end
  end
else
  return redis.error_reply('ERR cellgate: unknown operation')
end

local after
if not changed then
  -- The record as it was, as core reads it ('' when it holds nothing of this limiter).
  if any then after = old else after = '' end
else
  local parts, present = { fingerprint }, false
  local absent = pack('>I>I>I>I', MH, ML, 0, 0)
  -- Expire when every bucket is full again (an upper bound, see the proof), plus the grace.
  local ttl_ns = 0
  for i = 1, n do
    local o, r = (i - 1) * 5, (i - 1) * 12
    if S[o + 1] then
      present = true
      parts[i + 1] = pack('>I>I>I>I', S[o + 2], S[o + 3], S[o + 4], S[o + 5])
      local missing = S[o + 4] * P32 + S[o + 5]
      local full_ns
      if interval then
        full_ns = (missing / (R[r + 9] * P32 + R[r + 10]) + 1) * (R[r + 7] * P32 + R[r + 8])
      else
        full_ns = missing / (R[r + 5] * P32 + R[r + 6])
      end
      local dh, dl = dif(S[o + 2], S[o + 3], nh, nl)
      local t = dh * P32 + dl + full_ns
      if t > ttl_ns then ttl_ns = t end
    else
      parts[i + 1] = absent
    end
  end
  if present then
    after = concat(parts)
    local ttl_ms = floor(ttl_ns / 1000000 * (1 + 2 ^ -40)) + 2 + grace_ms
    if ttl_ms > 4503599627370496 then ttl_ms = 4503599627370496 end
    call('SET', key, after, 'PX', format('%.0f', ttl_ms))
  else
    after = ''
    call('DEL', key)
  end
end
return { pack('>I>I', nh, nl), old, after }

-- pair: pair as many waiting calls with ready agents as possible (up to ARGV[2]).
return reply({ ok = true, pairings = pair_some(tonumber(ARGV[2])) })

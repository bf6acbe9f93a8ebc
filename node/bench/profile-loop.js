'use strict';
// A loop of Limiter#check(key) with a short string key, for a sampling profiler:
//
//   perf record -e cpu-clock -F 2000 -g -o /tmp/perf.data node --perf-basic-prof bench/profile-loop.js [seconds]
//   perf report -i /tmp/perf.data --no-children --sort symbol --stdio
//
// Shares of samples do not depend on how loaded the machine is, unlike nanoseconds.

const { Limiter } = require('cellgate');

const seconds = Number(process.argv[2] || 8);
const limiter = new Limiter('1000000000/second', { maxKeys: 10_000 });
let checks = 0;
let sink = 0;
const end = Date.now() + seconds * 1000;
while (Date.now() < end) {
  for (let index = 0; index < 100_000; index++) sink += limiter.check('user:42').remaining;
  checks += 100_000;
}
console.log(`${checks} checks in ${seconds} s (${((seconds * 1e9) / checks).toFixed(1)} ns each)${sink < 0 ? '!' : ''}`);

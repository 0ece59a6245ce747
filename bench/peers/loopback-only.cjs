// Preloaded (`node --require`) into peers that bind every interface and offer no option to choose:
// the benchmark's servers listen on loopback only. A listen() without a host gets 127.0.0.1.
'use strict';
const net = require('node:net');

const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function listenOnLoopback(...args) {
  const [first, second] = args;
  if (first !== null && typeof first === 'object' && first.path === undefined && first.host === undefined) {
    args[0] = { ...first, host: '127.0.0.1' };
  } else if (typeof first === 'number' || (typeof first === 'string' && /^\d+$/.test(first))) {
    if (second === undefined || second === null) args[1] = '127.0.0.1';
    else if (typeof second !== 'string') args.splice(1, 0, '127.0.0.1');
  }
  return listen.apply(this, args);
};

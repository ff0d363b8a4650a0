// Benchmark program (Node.js net): echo every chunk back. Prints the port it listens on.
const net = require('net');
const server = net.createServer((s) => {
  s.on('error', () => {});
  s.on('data', (d) => s.write(d));
});
server.listen(0, '127.0.0.1', () => console.log('port\t' + server.address().port));

// Benchmark program (Node.js net): the same hello web server. Prints the port it listens on.
const net = require('net');
const resp = 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 14\r\n' +
  'Connection: close\r\n\r\nHello, world!\n';
const server = net.createServer((s) => {
  s.on('error', () => {});
  s.once('data', () => s.end(resp));
});
server.listen(0, '127.0.0.1', () => console.log('port\t' + server.address().port));

// json-server 0.17 with json-server-auth 2.1 (npm) on 127.0.0.1, port 0,
// for tests/auth.rs: a JWT login (`POST /login {"email", "password"}` →
// `{"accessToken": ...}`, tokens valid 1 h) in front of `/products`, which
// only logged-in users may read (rule 640). The one user's password comes
// from LOGIN_PASSWORD. Prints its URL, then one line per request:
// `METHOD PATH STATUS`.
const fs = require('fs');
const os = require('os');
const path = require('path');
const bcrypt = require('bcryptjs');
const jsonServer = require('json-server');
const auth = require('json-server-auth');

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'reprise-json-server-'));
const db = path.join(dir, 'db.json');
fs.writeFileSync(db, JSON.stringify({
  users: [{ id: 1, email: 'loadtest@example.test', password: bcrypt.hashSync(process.env.LOGIN_PASSWORD, 8) }],
  products: Array.from({ length: 20 }, (_, i) => ({ id: i + 1, userId: 1, name: `product ${i + 1}` })),
}));

const app = jsonServer.create();
const router = jsonServer.router(db);
app.db = router.db;
app.use((req, res, next) => {
  res.on('finish', () => console.log(`${req.method} ${req.path} ${res.statusCode}`));
  next();
});
app.use(auth.rewriter({ products: 640 }));
app.use(auth);
app.use(router);
const server = app.listen(0, '127.0.0.1', () => {
  console.log(`http://127.0.0.1:${server.address().port}`);
});
process.on('SIGTERM', () => { server.close(); fs.rmSync(dir, { recursive: true, force: true }); process.exit(0); });

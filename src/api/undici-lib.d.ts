// undici's own files that src/api/undici-parts.ts imports one by one: undici types only its
// index, so each is declared here as what it is, a CommonJS module of unknown shape (the
// parts module gives each its type from undici's index).
declare module "undici/lib/dispatcher/agent.js" {
  const part: unknown;
  export default part;
}
declare module "undici/lib/core/errors.js" {
  const part: unknown;
  export default part;
}
declare module "undici/lib/interceptor/redirect.js" {
  const part: unknown;
  export default part;
}
declare module "undici/lib/api/api-request.js" {
  const part: unknown;
  export default part;
}
declare module "undici/lib/core/util.js" {
  const part: unknown;
  export default part;
}

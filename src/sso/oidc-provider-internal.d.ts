/** The one oidc-provider internal the key rotation uses (key-rotation.ts): its per-instance cache. */
declare module "oidc-provider/lib/helpers/weak_cache.js" {
  const instance: (provider: object) => unknown;
  export default instance;
}

// Who is signed in. Filled from `GET /panel/session`; the token itself never reaches
// JavaScript (it lives in an httpOnly cookie).

export const session = {
  account: null,
  readOnly: false,
};

export function setSession(body) {
  session.account = body ? body.account : null;
  session.readOnly = body ? Boolean(body.read_only) : false;
}

let catalog = null;

// Plans, systems and locations change rarely: read once per page load.
export async function loadCatalog(get) {
  if (!catalog) {
    const [plans, systems, locations] = await Promise.all([
      get("/api/v1/plans/"),
      get("/api/v1/operating-systems/"),
      get("/api/v1/locations/"),
    ]);
    catalog = { plans, systems, locations };
  }
  return catalog;
}

export function forgetCatalog() {
  catalog = null;
}

const BASE = "https://api.acme.io";

export async function listOrders() {
  const res = await fetch(`${BASE}/v1/orders`, {
    headers: { Authorization: "Bearer GQiIJ2o8IQmk4Iy0pk5O3hCZXaLTBu2ZSulKqShD" },
  });
  return res.json();
}

export async function listUsers(token: string) {
  return fetch(`${BASE}/v1/users`, { headers: { Authorization: `Bearer ${token}` } });
}

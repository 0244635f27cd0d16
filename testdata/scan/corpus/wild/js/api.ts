import axios from "axios";
import { Pool } from "pg";

const pool = new Pool({ host: "db", user: "app", password: "juniper^8120", database: "shop" });
export const client = axios.create({
  baseURL: "https://api.acme.io",
  headers: { Authorization: `Bearer BelvZWzSv7rB3JevT6VWxOureRE4zE6ecwwvjbliHtYSQs9X` },
});
const mongoUri = "mongodb+srv://app:hNHz06nu3bNg9Pk@cluster0.ab12c.mongodb.net/shop?retryWrites=true";
const config = { apiKey: "LaE716VpT0sFPPUff5c0CxPXpgr5qaLY6MdCRtE", authDomain: "acme.firebaseapp.com" };
process.env.JWT_SECRET = process.env.JWT_SECRET || "E7e2WVS0KdKgysed6q4MZ7De2j2BUVGj";
const clientSecret = '3OnM6+WuDcQywKdsmWJlVkJF+zV7srPVC+Wai+S399nb';
fetch(url, { headers: { "x-api-key": "6pVQYpUdzlr4jxL3V34xOGXFxxlDDRz0t0MBGJms" } });

const password = process.env.DB_PASSWORD;
const token = localStorage.getItem("token");
const apiKey = "<YOUR_API_KEY>";
const secret = "${SECRET}";
const passwordInput = document.querySelector("#password");
const tokenKey = "auth.token";
const placeholder = { password: "********" };

import { initializeApp } from "firebase/app";

const firebaseConfig = {
  apiKey: "AIzaWor-Ngn-vJqWISCTswAt0DFDc0x-E9TEI-k",
  authDomain: "acme-web.firebaseapp.com",
  projectId: "acme-web",
  storageBucket: "acme-web.appspot.com",
  messagingSenderId: "281712949352",
  appId: "1:492510526703:web:94d964263d70fcd620649f",
};

export const app = initializeApp(firebaseConfig);

// Public Mapbox token (pk.) is meant to be shipped; the secret one (sk.) is not.
export const mapboxPublic = "pk.eyJ1IjoiYWNtZSIsImEiOiJDIgjUdh4Ydc9mSmgQPK1yv8OvM6RpgH_YwsBwg7s.51fYZmxP8MVpaRiWXjJTw4";
export const mapboxDownloads = "sk.eyJ1IjoiYWNtZSIsImEiOiJ8IqelIlRHHwW8Oes9mv3QC-WjHZ5th3QyRAPRBnP._kInCpqE6VHMJ7h1y0knk-";

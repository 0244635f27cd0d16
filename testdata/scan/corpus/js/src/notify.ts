import { WebClient } from "@slack/web-api";

const slack = new WebClient("xoxb-356677628620-7234160005501-pjMPVgjG6nXlcCR3aoZWpje1");
const DISCORD = "https://discord.com/api/webhooks/8613353568969099267/PVZ7BwpQa2aDwak4-wJSyv5EpSV5CBsFcPBl4dEFtrp21s3CN91WWsoE3jVDZ3OB8_31";

export async function notify(text: string) {
  await slack.chat.postMessage({ channel: "#deploys", text });
  await fetch(DISCORD, { method: "POST", body: JSON.stringify({ content: text }) });
}

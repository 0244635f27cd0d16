import os

from anthropic import Anthropic
from openai import OpenAI

# TODO: move to the secret manager
OPENAI_KEY = "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"
ANTHROPIC_KEY = "sk-ant-api03-uyq0b4lqJOopv-DoDmXh4yGLEWSKD38YDS_i1tTJdIE1wbTwdEZ_uB1nt7ns40wtfwbh98r9n5vChzT-EFlPjr6xBjRNlAA"

openai = OpenAI(api_key=os.environ.get("OPENAI_API_KEY", OPENAI_KEY))
claude = Anthropic(api_key=os.getenv("ANTHROPIC_API_KEY"))
groq_key = "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"


def complete(prompt: str, model: str = "gpt-4o-mini") -> str:
    resp = openai.chat.completions.create(model=model, messages=[{"role": "user", "content": prompt}])
    return resp.choices[0].message.content

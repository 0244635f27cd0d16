#!/usr/bin/env python3
"""Publish the wheel to PyPI and the model to the Hub."""
import subprocess

from huggingface_hub import HfApi

PYPI_TOKEN = "pypi-AgEIcHlwaS5vcmc2BmU7f1jPui3tB0fUEXBVK1JyuSCFzw1vduBSo3b0mFhKCoOfvue8MHElZiesAyePhwPuLUVSHItLhDfb5MADXSFCUWeAv-U6N7hLG7r59phFFXwiyA06Nvhklnrll9HAR3D5DU2merf"
HF_TOKEN = "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"

subprocess.run(["twine", "upload", "-u", "__token__", "-p", PYPI_TOKEN, "dist/*"], check=True)
HfApi(token=HF_TOKEN).upload_folder(folder_path="model", repo_id="acme/classifier")

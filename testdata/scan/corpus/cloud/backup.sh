#!/usr/bin/env bash
# nightly backup upload
SAS="sv=2022-11-02&ss=b&srt=co&sp=rwl&se=2027-01-01T00:00:00Z&st=2026-01-01T00:00:00Z&spr=https&sig=JEwBbLpmNwch0UrLrzs4tefOTcNx3DS94NwWcZzdKIO%3D"
azcopy copy /var/backups "https://acme.blob.core.windows.net/backups?$SAS" --recursive
ALIBABA_CLOUD_ACCESS_KEY_ID=LTAIN8dunlCg6dfw5MOyNTXY
ALIBABA_CLOUD_ACCESS_KEY_SECRET=BBjbl7K4Nml1QLmlsRRKB2lelBUxoP
TENCENTCLOUD_SECRET_ID=AKIDPTYwnRLRazpg1ONHawQIm1rTtXBNTnTS

#!/usr/bin/env python3
# First response of a rubis VM started four ways (cold boot + init, full resume,
# lazy, twinkle), then 300 listing requests; run from the repository root after
# `twinkle data load --app rubis --redis redis://127.0.0.1:16379`,
# `twinkle image build --app rubis --connect redis=127.0.0.1:16379 --out /tmp/img-rubis` and
# `twinkle image track --image /tmp/img-rubis --connect redis=127.0.0.1:16379 --warmup PATH...`
# (docs/results.md). To be replaced by `twinkle bench startup --app rubis`.
import subprocess, time, sys, urllib.request
res={}
for rep in range(3):
  for st in ["cold","resume","lazy","twinkle"]:
    t0=time.time()
    args=["target/release/twinkle","vm","run" if st=="cold" else "restore"]
    if st=="cold": args+=["--app","rubis","--listen","127.0.0.1:0","-q","--connect","redis=127.0.0.1:16379"]
    else: args+=["--image","/tmp/img-rubis","--strategy",st,"--listen","127.0.0.1:0","-q","--connect","redis=127.0.0.1:16379"]
    p=subprocess.Popen(args,stdout=subprocess.PIPE,stderr=subprocess.DEVNULL,text=True)
    addr=p.stdout.readline().split()[1]
    while True:
        try:
            b=urllib.request.urlopen("http://"+addr+"/PHP/ViewItem.php?itemId=3",timeout=5).read(); break
        except Exception as e:
            time.sleep(0.001)
    t1=time.time()
    t2=time.time()
    for i in range(300): urllib.request.urlopen("http://"+addr+"/PHP/SearchItemsByCategory.php?category=%d&page=0&nbOfItems=25"%(i%20+1),timeout=5).read()
    t3=time.time()
    res.setdefault(st,[]).append(((t1-t0)*1000,(t3-t2)*1000))
    p.kill(); p.wait()
for st,v in res.items():
    print(st, "first response ms:", ", ".join("%.0f"%a for a,_ in v), "| next 300 requests ms:", ", ".join("%.0f"%b for _,b in v))

package scan_test

import (
	"fmt"
	"os"

	"github.com/tokenward/tokenward/internal/scan"
)

func ExampleScanner_ScanBytes() {
	cfg, err := scan.ParseConfig("example.toml", []byte(`
[[rules]]
id = "aws-access-key-id"
description = "AWS access key id"
regex = '''\b((?:AKIA|ASIA)[A-Z2-7]{16})\b'''
keywords = ["akia", "asia"]
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	s, err := scan.New(cfg, scan.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, f := range s.ScanBytes("config.ini", []byte("[default]\naws_access_key_id = AKIAZ7VRSQ5TJN2XMGLP\n")) {
		fmt.Println(f)
	}
	_ = scan.WriteReport(os.Stdout, "csv", nil, scan.ReportInfo{})
	// Output:
	// config.ini:2:21: aws-access-key-id AKIA****
	// rule_id,path,line,column,end_line,end_column,secret,confirmed,decoded,managed_secret,commit,author,email,date,fingerprint,description,name,shape,entropy,detail
}

package awsrecord

import (
	"context"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"microk8s-platform/internal/iampolicy"
)

// Env tells Authz what a request does not say by itself.
type Env struct {
	Account, Region string
	// SSEKMS: bucket -> the ARN of its default SSE-KMS key.
	SSEKMS map[string]string
	// HashKeys: DynamoDB table -> its partition key (dynamodb:LeadingKeys).
	HashKeys map[string]string
	// KeyARN resolves a KMS KeyId (key id, key ARN, alias name or alias
	// ARN) to the key's ARN, which is what IAM authorises against.
	KeyARN func(keyID string) (string, error)
	// EC2Tags returns the tags of an EC2 resource by id (aws:ResourceTag/*).
	EC2Tags func(id string) (map[string]string, error)
}

// Authz returns the authorisation requests AWS evaluates for c, every one
// of which must be allowed for the call to succeed; none for a call that
// needs no permission (sts:GetCallerIdentity).
func (e Env) Authz(c Call) ([]iampolicy.Request, error) {
	switch c.Service {
	case "s3":
		return e.s3(c)
	case "kms":
		return e.kms(c)
	case "dynamodb":
		return e.dynamodb(c)
	case "ec2":
		return e.ec2(c)
	case "sts":
		// "No permissions are required to perform this operation" (AWS STS
		// API Reference, GetCallerIdentity).
		if c.Operation == "GetCallerIdentity" {
			return nil, nil
		}
	}
	return nil, fmt.Errorf("awsrecord: no authorisation rule for %s:%s (%s %s)", c.Service, c.Operation, c.Method, c.Path)
}

// s3Operation names an S3 REST request (path-style: /bucket/key).
func s3Operation(c *Call) string {
	bucket, key := s3Target(c.Path)
	q := c.Query
	has := func(k string) bool { _, ok := q[k]; return ok }
	switch {
	case bucket == "":
		return "ListBuckets"
	case key == "":
		switch c.Method {
		case http.MethodGet:
			switch {
			case has("location"):
				return "GetBucketLocation"
			case has("versions"):
				return "ListObjectVersions"
			case has("versioning"):
				return "GetBucketVersioning"
			case has("encryption"):
				return "GetBucketEncryption"
			case has("uploads"):
				return "ListMultipartUploads"
			case q.Get("list-type") == "2":
				return "ListObjectsV2"
			case len(q) == 0 || has("prefix") || has("delimiter") || has("marker") || has("max-keys"):
				return "ListObjects"
			}
		case http.MethodHead:
			return "HeadBucket"
		case http.MethodPut:
			if len(q) == 0 {
				return "CreateBucket"
			}
		case http.MethodPost:
			if has("delete") {
				return "DeleteObjects"
			}
		}
	default:
		switch c.Method {
		case http.MethodGet:
			if has("uploadId") {
				return "ListParts"
			}
			return "GetObject"
		case http.MethodHead:
			return "HeadObject"
		case http.MethodPut:
			switch {
			case has("uploadId"):
				return "UploadPart"
			case c.Header.Get("X-Amz-Copy-Source") != "":
				return "CopyObject"
			case len(q) == 0 || has("x-id"):
				return "PutObject"
			}
		case http.MethodPost:
			switch {
			case has("uploads"):
				return "CreateMultipartUpload"
			case has("uploadId"):
				return "CompleteMultipartUpload"
			}
		case http.MethodDelete:
			if has("uploadId") {
				return "AbortMultipartUpload"
			}
			return "DeleteObject"
		}
	}
	return fmt.Sprintf("unknown(%s %s?%s)", c.Method, c.Path, q.Encode())
}

func s3Target(path string) (bucket, key string) {
	p, _ := url.PathUnescape(strings.TrimPrefix(path, "/"))
	bucket, key, _ = strings.Cut(p, "/")
	return bucket, key
}

// s3 maps an S3 request to IAM actions (Amazon S3 API Reference, each
// operation's "Permissions"; Service Authorization Reference, Amazon S3):
// HeadBucket and ListObjects(V2) are s3:ListBucket, with the request's
// prefix as s3:prefix; HeadObject is s3:GetObject; a multi-object delete is
// s3:DeleteObject per key; the parts of a multipart upload are
// s3:PutObject; a read of a missing key also needs s3:ListBucket, or S3
// answers 403 instead of 404. On a bucket whose default encryption is SSE-KMS, S3 uses
// the key on the caller's behalf: writing needs kms:GenerateDataKey and
// reading kms:Decrypt, both arriving with kms:ViaService
// s3.<region>.amazonaws.com (Amazon S3 User Guide, "Using server-side
// encryption with AWS KMS keys (SSE-KMS)", "Permissions"; AWS KMS
// Developer Guide, "kms:ViaService").
func (e Env) s3(c Call) ([]iampolicy.Request, error) {
	bucket, key := s3Target(c.Path)
	bucketARN, objARN := "arn:aws:s3:::"+bucket, "arn:aws:s3:::"+bucket+"/"+key
	one := func(action, arn string, ctx map[string][]string) iampolicy.Request {
		return iampolicy.Request{Action: "s3:" + action, Resource: arn, Ctx: ctx}
	}
	versioned := c.Query.Get("versionId") != ""
	var out []iampolicy.Request
	switch c.Operation {
	case "ListObjectsV2", "ListObjects":
		ctx := map[string][]string{}
		for _, k := range []string{"prefix", "delimiter", "max-keys"} {
			if v := c.Query.Get(k); v != "" || c.Query.Has(k) {
				ctx["s3:"+k] = []string{v}
			}
		}
		if _, ok := ctx["s3:prefix"]; !ok {
			ctx["s3:prefix"] = []string{""}
		}
		out = append(out, one("ListBucket", bucketARN, ctx))
	case "ListObjectVersions":
		out = append(out, one("ListBucketVersions", bucketARN, map[string][]string{"s3:prefix": {c.Query.Get("prefix")}}))
	case "HeadBucket":
		out = append(out, one("ListBucket", bucketARN, nil))
	case "GetBucketLocation", "GetBucketVersioning", "CreateBucket":
		out = append(out, one(c.Operation, bucketARN, nil))
	case "GetBucketEncryption":
		out = append(out, one("GetEncryptionConfiguration", bucketARN, nil))
	case "ListMultipartUploads":
		out = append(out, one("ListBucketMultipartUploads", bucketARN, nil))
	case "GetObject", "HeadObject":
		action := "GetObject"
		if versioned {
			action = "GetObjectVersion"
		}
		out = append(out, one(action, objARN, nil))
		switch {
		case c.Status == http.StatusNotFound:
			// "If the object you request doesn't exist, the error that
			// Amazon S3 returns depends on whether you also have the
			// s3:ListBucket permission": 404 with it, 403 without (Amazon
			// S3 API Reference, GetObject and HeadObject, "Permissions").
			// The request carries no s3:prefix, so a ListBucket grant that
			// requires one does not count.
			out = append(out, one("ListBucket", bucketARN, nil))
		case c.Operation == "GetObject":
			out = append(out, e.viaS3("Decrypt", bucket)...)
		}
	case "PutObject", "UploadPart", "CreateMultipartUpload", "CompleteMultipartUpload":
		out = append(out, one("PutObject", objARN, nil))
		out = append(out, e.viaS3("GenerateDataKey", bucket)...)
		if c.Operation != "PutObject" { // multipart: the parts are decrypted to complete it
			out = append(out, e.viaS3("Decrypt", bucket)...)
		}
	case "CopyObject":
		src, _ := url.PathUnescape(strings.TrimPrefix(c.Header.Get("X-Amz-Copy-Source"), "/"))
		src, _, _ = strings.Cut(src, "?")
		srcBucket, _, _ := strings.Cut(src, "/")
		out = append(out, one("PutObject", objARN, nil), one("GetObject", "arn:aws:s3:::"+src, nil))
		out = append(out, e.viaS3("Decrypt", srcBucket)...)
		out = append(out, e.viaS3("GenerateDataKey", bucket)...)
	case "DeleteObject":
		action := "DeleteObject"
		if versioned {
			action = "DeleteObjectVersion"
		}
		out = append(out, one(action, objARN, nil))
	case "DeleteObjects":
		var del struct {
			Objects []struct {
				Key       string `xml:"Key"`
				VersionID string `xml:"VersionId"`
			} `xml:"Object"`
		}
		if err := xml.Unmarshal(c.Body, &del); err != nil {
			return nil, fmt.Errorf("awsrecord: DeleteObjects body: %w", err)
		}
		for _, o := range del.Objects {
			action := "DeleteObject"
			if o.VersionID != "" {
				action = "DeleteObjectVersion"
			}
			out = append(out, one(action, bucketARN+"/"+o.Key, nil))
		}
	case "AbortMultipartUpload":
		out = append(out, one("AbortMultipartUpload", objARN, nil))
	case "ListParts":
		out = append(out, one("ListMultipartUploadParts", objARN, nil))
	default:
		return nil, fmt.Errorf("awsrecord: no authorisation rule for S3 %s", c.Operation)
	}
	return out, nil
}

// viaS3 is S3 using the bucket's SSE-KMS key on the caller's behalf.
func (e Env) viaS3(action, bucket string) []iampolicy.Request {
	key, ok := e.SSEKMS[bucket]
	if !ok {
		return nil
	}
	return []iampolicy.Request{{Action: "kms:" + action, Resource: key, Ctx: map[string][]string{
		"kms:ViaService": {"s3." + e.Region + ".amazonaws.com"}, "kms:CallerAccount": {e.Account},
	}}}
}

// kms: the action on the key the request names, or, for Decrypt (whose
// ciphertext names its key), the key the answer names.
func (e Env) kms(c Call) ([]iampolicy.Request, error) {
	req, resp := jsonBody(c.Body), jsonBody(c.Response)
	id, _ := resp["KeyId"].(string)
	if id == "" || c.Status >= 300 {
		id, _ = req["KeyId"].(string)
	}
	if id == "" {
		return nil, fmt.Errorf("awsrecord: kms:%s names no key (status %d)", c.Operation, c.Status)
	}
	arn := id
	if e.KeyARN != nil {
		var err error
		if arn, err = e.KeyARN(id); err != nil {
			return nil, fmt.Errorf("awsrecord: kms:%s key %s: %w", c.Operation, id, err)
		}
	}
	ctx := map[string][]string{"kms:CallerAccount": {e.Account}}
	if strings.HasPrefix(id, "alias/") {
		ctx["kms:RequestAlias"] = []string{id}
	}
	return []iampolicy.Request{{Action: "kms:" + c.Operation, Resource: arn, Ctx: ctx}}, nil
}

// dynamodb: the action on the table, with the partition keys the request
// reads or writes as dynamodb:LeadingKeys (Amazon DynamoDB Developer
// Guide, "Using IAM policy conditions for fine-grained access control").
func (e Env) dynamodb(c Call) ([]iampolicy.Request, error) {
	req := jsonBody(c.Body)
	table, _ := req["TableName"].(string)
	if table == "" {
		return nil, fmt.Errorf("awsrecord: dynamodb:%s names no table", c.Operation)
	}
	arn := fmt.Sprintf("arn:aws:dynamodb:%s:%s:table/%s", e.Region, e.Account, table)
	hash := e.HashKeys[table]
	leading := func(item any) []string {
		m, _ := item.(map[string]any)
		v, _ := m[hash].(map[string]any)
		if s, ok := v["S"].(string); ok {
			return []string{s}
		}
		return nil
	}
	ctx := map[string][]string{}
	switch c.Operation {
	case "GetItem", "DeleteItem", "UpdateItem":
		ctx["dynamodb:LeadingKeys"] = leading(req["Key"])
	case "PutItem":
		ctx["dynamodb:LeadingKeys"] = leading(req["Item"])
	case "Scan", "DescribeTable", "CreateTable", "DescribeTimeToLive", "UpdateTimeToLive", "DescribeContinuousBackups":
	default:
		return nil, fmt.Errorf("awsrecord: no authorisation rule for DynamoDB %s", c.Operation)
	}
	if len(ctx) == 0 {
		ctx = nil
	}
	return []iampolicy.Request{{Action: "dynamodb:" + c.Operation, Resource: arn, Ctx: ctx}}, nil
}

// ec2: the operations our scripts make (scripts/access). Describe* are
// authorised on "*"; AuthorizeSecurityGroupIngress on the group and on the
// security-group-rule it creates (Service Authorization Reference, Amazon
// EC2: AuthorizeSecurityGroupIngress, resource types security-group* and
// security-group-rule); RevokeSecurityGroupIngress on the group and on
// each rule named by id.
func (e Env) ec2(c Call) ([]iampolicy.Request, error) {
	p, err := url.ParseQuery(string(c.Body))
	if err != nil {
		return nil, err
	}
	action := "ec2:" + c.Operation
	if strings.HasPrefix(c.Operation, "Describe") {
		return []iampolicy.Request{{Action: action, Resource: "*"}}, nil
	}
	arn := func(typ, id string) string {
		return fmt.Sprintf("arn:aws:ec2:%s:%s:%s/%s", e.Region, e.Account, typ, id)
	}
	owned := func(typ, id string) (iampolicy.Request, error) {
		ctx := map[string][]string{}
		if e.EC2Tags != nil {
			tags, err := e.EC2Tags(id)
			if err != nil {
				return iampolicy.Request{}, err
			}
			for k, v := range tags {
				ctx["aws:ResourceTag/"+k] = []string{v}
			}
		}
		return iampolicy.Request{Action: action, Resource: arn(typ, id), Ctx: ctx}, nil
	}
	switch c.Operation {
	case "AuthorizeSecurityGroupIngress", "AuthorizeSecurityGroupEgress", "RevokeSecurityGroupIngress", "RevokeSecurityGroupEgress":
		group := p.Get("GroupId")
		if group == "" {
			return nil, fmt.Errorf("awsrecord: %s without GroupId", c.Operation)
		}
		g, err := owned("security-group", group)
		if err != nil {
			return nil, err
		}
		out := []iampolicy.Request{g}
		if strings.HasPrefix(c.Operation, "Authorize") {
			out = append(out, iampolicy.Request{Action: action, Resource: arn("security-group-rule", "*"), Ctx: requestTags(p)})
		}
		for k, v := range p {
			if strings.HasPrefix(k, "SecurityGroupRuleId.") {
				r, err := owned("security-group-rule", v[0])
				if err != nil {
					return nil, err
				}
				out = append(out, r)
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("awsrecord: no authorisation rule for EC2 %s", c.Operation)
}

// requestTags are the TagSpecification tags of a query request.
func requestTags(p url.Values) map[string][]string {
	ctx := map[string][]string{}
	var keys []string
	for k, v := range p {
		if strings.HasPrefix(k, "TagSpecification.") && strings.HasSuffix(k, ".Key") {
			val := p.Get(strings.TrimSuffix(k, ".Key") + ".Value")
			ctx["aws:RequestTag/"+v[0]] = []string{val}
			keys = append(keys, v[0])
		}
	}
	if len(keys) == 0 {
		return nil
	}
	sort.Strings(keys)
	ctx["aws:TagKeys"] = keys
	return ctx
}

// Denied is a call with the requests its principal's policy refuses.
type Denied struct {
	Call     Call
	Requests []iampolicy.Request
}

func (d Denied) String() string {
	var rs []string
	for _, r := range d.Requests {
		rs = append(rs, r.String())
	}
	return fmt.Sprintf("[%s] %s: denied %s", d.Call.Tag, d.Call, strings.Join(rs, "; "))
}

// Check evaluates every call against the policy of its principal
// (policies: principal -> document). A call by a principal without a
// policy is skipped (the test's own set-up, as an administrator).
func (e Env) Check(calls []Call, policies map[string]iampolicy.Document) ([]Denied, error) {
	var out []Denied
	for _, c := range calls {
		doc, ok := policies[c.Principal]
		if !ok {
			continue
		}
		reqs, err := e.Authz(c)
		if err != nil {
			return nil, fmt.Errorf("[%s] %s: %w", c.Tag, c, err)
		}
		var denied []iampolicy.Request
		for _, r := range reqs {
			ok, err := iampolicy.Allowed(doc, r)
			if err != nil {
				return nil, err
			}
			if !ok {
				denied = append(denied, r)
			}
		}
		if len(denied) > 0 {
			out = append(out, Denied{c, denied})
		}
	}
	return out, nil
}

func contextWith(req *http.Request, c *Call) context.Context {
	return context.WithValue(req.Context(), callKey{}, c)
}

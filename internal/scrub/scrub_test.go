package scrub

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The bodies below are written for these tests in the shapes the services
// document (../../docs/CLOUD.md: §3.1 IAM token answer, §1.5 Key Protect key,
// §5.4 event log record, §6.3 and §6.5 Cloud Logs stream and CADF event,
// §4.3 bucket location); every identifier in them is made up.

const (
	account    = "8d63fb1cc5e99e86dd7229dddffc05a5"
	bssAccount = "3f2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d"
	email      = "Jane.Doe@corp.example.org"
	ibmid      = "IBMid-6620031XYZ"
	publicIP   = "169.45.21.7"
	privateIP  = "10.177.42.9"
	ipv6       = "2607:f0d0:1002:51::4"
	apiKey     = "k3yK3yK3yK3yK3yK3yK3yK3yK3yK3yK3yK3yK3yK3yAB"
)

func jwt(t *testing.T, claims map[string]any) string {
	t.Helper()
	b, err := json.Marshal(claims)
	require.NoError(t, err)
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(`{"kid":"20240101","alg":"RS256"}`)) + "." + enc.EncodeToString(b) + "." +
		enc.EncodeToString([]byte("not-a-real-signature-but-long-enough"))
}

func mustNotContain(t *testing.T, got string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		require.NotContains(t, strings.ToLower(got), strings.ToLower(s), "a scrubbed body still holds %q", s)
	}
}

func TestIAMTokenAnswer(t *testing.T) {
	t.Parallel()
	tok := jwt(t, map[string]any{
		"iam_id": ibmid, "sub": email, "email": email, "iat": 1717000000, "exp": 1717003600,
		"account": map[string]any{"bss": account, "ims": "2345678"},
	})
	body := `{"access_token":"` + tok + `","refresh_token":"not_supported","ims_user_id":7654321,` +
		`"token_type":"Bearer","expires_in":3600,"expiration":1717003600,"scope":"ibm openid"}`
	s := New()
	out, err := s.Body("application/json", []byte(body))
	require.NoError(t, err)
	mustNotContain(t, string(out), tok, email, ibmid, account, "7654321", "2345678")

	var ans map[string]any
	require.NoError(t, json.Unmarshal(out, &ans))
	require.Equal(t, "not_supported", ans["refresh_token"], "IAM's fixed refresh_token value is no secret")
	require.Equal(t, "Bearer", ans["token_type"])
	require.EqualValues(t, 3600, ans["expires_in"])
	require.EqualValues(t, 1717003600, ans["expiration"], "numbers that identify no one are kept")
	require.EqualValues(t, 2000001, ans["ims_user_id"])

	// The token is still a JWT, unsigned, whose claims are its lifetime only.
	parts := strings.Split(ans["access_token"].(string), ".")
	require.Len(t, parts, 3)
	claims, err := base64.RawURLEncoding.DecodeString(parts[1])
	require.NoError(t, err)
	require.JSONEq(t, `{"iat":1717000000,"exp":1717003600,"scrubbed":true}`, string(claims))
	hdr, err := base64.RawURLEncoding.DecodeString(parts[0])
	require.NoError(t, err)
	require.JSONEq(t, `{"alg":"none","typ":"JWT"}`, string(hdr))

	// Key order is the server's.
	require.True(t, strings.HasPrefix(string(out), `{"access_token":`), string(out))
	require.Less(t, strings.Index(string(out), `"token_type"`), strings.Index(string(out), `"scope"`))
}

func TestKeyMetadataKeepsTheKeyAndHidesTheAccount(t *testing.T) {
	t.Parallel()
	crn := "crn:v1:bluemix:public:kms:us-south:a/" + account + ":5e8c4a2e-1111-4c5d-9a0b-2f4e6d8c0a1b:key:0f9e8d7c-2222-4b3a-8c1d-9e8f7a6b5c4d"
	body := `{"metadata":{"collectionType":"application/vnd.ibm.kms.key+json","collectionTotal":1},"resources":[{` +
		`"type":"application/vnd.ibm.kms.key+json","id":"0f9e8d7c-2222-4b3a-8c1d-9e8f7a6b5c4d","name":"e2e-root",` +
		`"state":1,"extractable":false,"crn":"` + crn + `","createdBy":"` + ibmid + `","lastUpdatedBy":"iam-ServiceId-aaaabbbb",` +
		`"creationDate":"2024-05-29T10:00:00Z","keyRingID":"default","deleted":false,` +
		`"keyVersion":{"id":"11112222-3333-4444-5555-666677778888","creationDate":"2024-05-29T10:00:00Z"}}]}`
	s := New()
	out, err := s.Body("application/vnd.ibm.kms.key+json", []byte(body))
	require.NoError(t, err)
	mustNotContain(t, string(out), account, ibmid, "iam-ServiceId-aaaabbbb")

	var ans struct {
		Resources []map[string]any `json:"resources"`
	}
	require.NoError(t, json.Unmarshal(out, &ans))
	k := ans.Resources[0]
	require.Equal(t, strings.Replace(crn, account, "00000000000000000000000000000001", 1), k["crn"],
		"only the account part of the CRN changes")
	require.Equal(t, "e2e-root", k["name"])
	require.EqualValues(t, 1, k["state"])
	require.Equal(t, "IBMid-0000000001", k["createdBy"])
	require.Equal(t, "principal-1", k["lastUpdatedBy"])
}

func TestEventLogPage(t *testing.T) {
	t.Parallel()
	meta := `{"requestData":{"ibmApiKey":"` + apiKey + `","uri":"cos://us-south/bucket/image.vhd-0.vhd"},"user":"` + email + `","ip":"` + publicIP + `"}`
	metaJSON, err := json.Marshal(meta)
	require.NoError(t, err)
	body := `[{"accountId":1234567,"eventCreateDate":"2024-05-29T10:01:02.123456-06:00","eventName":"Create",` +
		`"ipAddress":"` + publicIP + `","label":"web.example.com","metaData":` + string(metaJSON) + `,` +
		`"objectId":141000001,"objectName":"CCI","traceId":"6656e0f4a1b2c","userId":7654321,"userType":"CUSTOMER",` +
		`"username":"1234567_` + email + `"},` +
		`{"accountId":1234567,"eventName":"Power On","ipAddress":"` + privateIP + `","objectId":141000001,"objectName":"CCI",` +
		`"userId":"","userType":"SYSTEM","username":"SYSTEM"}]`
	s := New()
	out, err := s.Body("application/json", []byte(body))
	require.NoError(t, err)
	mustNotContain(t, string(out), "1234567", "7654321", publicIP, privateIP, email, apiKey)

	var page []map[string]any
	require.NoError(t, json.Unmarshal(out, &page))
	require.Len(t, page, 2)
	require.Equal(t, page[0]["accountId"], page[1]["accountId"], "one account, one placeholder")
	require.EqualValues(t, 1000001, page[0]["accountId"])
	require.EqualValues(t, 141000001, page[0]["objectId"], "resource ids are kept")
	require.Equal(t, "web.example.com", page[0]["label"])
	require.Equal(t, "198.18.0.1", page[0]["ipAddress"])
	require.Equal(t, "198.18.0.2", page[1]["ipAddress"])
	require.Equal(t, "", page[1]["userId"], "an empty user id stays empty")
	require.Equal(t, "SYSTEM", page[1]["username"], "the platform is no one")
	require.Equal(t, "user2@example.com", page[0]["username"], "<account>_<e-mail> is an address as a whole")

	// metaData is still a JSON document, scrubbed by key.
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(page[0]["metaData"].(string)), &m))
	rd := m["requestData"].(map[string]any)
	require.Equal(t, Redacted, rd["ibmApiKey"])
	require.Equal(t, "cos://us-south/bucket/image.vhd-0.vhd", rd["uri"])
	require.Equal(t, "198.18.0.1", m["ip"], "the same address gets the same placeholder everywhere")
}

func TestCloudLogsStream(t *testing.T) {
	t.Parallel()
	event := map[string]any{
		"action": "kms.secrets.wrap", "outcome": "success", "eventTime": "2024-05-29T10:00:01.00+0000",
		"initiator": map[string]any{"id": ibmid, "name": email, "typeURI": "service/security/account/user",
			"credential": map[string]any{"type": "apikey"}, "host": map[string]any{"address": ipv6}},
		"target":       map[string]any{"id": "crn:v1:bluemix:public:kms:us-south:a/" + account + ":guid:key:kid", "name": "e2e-root"},
		"requestData":  map[string]any{"keyVersion": map[string]any{"id": "kv"}, "plaintext": "ZGVrZGVrZGVr"},
		"logSourceCRN": "crn:v1:bluemix:public:kms:us-south:a/" + bssAccount + ":guid::",
	}
	ud, err := json.Marshal(event)
	require.NoError(t, err)
	result, err := json.Marshal(map[string]any{"result": map[string]any{"results": []any{map[string]any{
		"metadata":  []any{map[string]any{"key": "timestamp", "value": "2024-05-29T10:00:01.000"}},
		"labels":    []any{map[string]any{"key": "applicationname", "value": "ibm-audit-event"}},
		"user_data": string(ud),
	}}}})
	require.NoError(t, err)
	body := ": keep-alive from " + privateIP + "\n" +
		`data: {"query_id":{"query_id":"7b1f0c2e"}}` + "\n\n" +
		"data: " + string(result) + "\r\n\r\n"
	s := New()
	out, err := s.Body("text/event-stream", []byte(body))
	require.NoError(t, err)
	mustNotContain(t, string(out), ibmid, email, ipv6, account, bssAccount, privateIP, "ZGVrZGVrZGVr")

	lines := strings.Split(string(out), "\n")
	require.Len(t, lines, len(strings.Split(body, "\n")), "the stream keeps its lines")
	require.Equal(t, `data: {"query_id":{"query_id":"7b1f0c2e"}}`, lines[1])
	require.True(t, strings.HasSuffix(lines[3], "\r"), "line ends are kept")
	var msg struct {
		Result struct {
			Results []struct {
				UserData string `json:"user_data"`
			} `json:"results"`
		} `json:"result"`
	}
	require.NoError(t, json.Unmarshal([]byte(strings.TrimPrefix(strings.TrimSpace(lines[3]), "data: ")), &msg))
	var ev map[string]any
	require.NoError(t, json.Unmarshal([]byte(msg.Result.Results[0].UserData), &ev))
	require.Equal(t, "kms.secrets.wrap", ev["action"])
	ini := ev["initiator"].(map[string]any)
	require.Equal(t, "IBMid-0000000001", ini["id"])
	require.Equal(t, "user1@example.com", ini["name"])
	require.Equal(t, "2001:db8::1", ini["host"].(map[string]any)["address"])
	require.Equal(t, KeyMaterial, ev["requestData"].(map[string]any)["plaintext"])
	// json.Marshal sorted the event's keys: logSourceCRN's account is met
	// first.
	require.Equal(t, "crn:v1:bluemix:public:kms:us-south:a/00000000000000000000000000000002:guid:key:kid",
		ev["target"].(map[string]any)["id"])
	require.Contains(t, ev["logSourceCRN"], "a/00000000000000000000000000000001:", "another account gets another placeholder")
}

func TestXMLAndText(t *testing.T) {
	t.Parallel()
	s := New(apiKey)
	loc := "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n" +
		"<LocationConstraint xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">us-south-standard</LocationConstraint>"
	out, err := s.Body("application/xml", []byte(loc))
	require.NoError(t, err)
	require.Equal(t, loc, string(out), "nothing to hide in a bucket location")

	errBody := "<Error><Code>AccessDenied</Code><Message>Access Denied for " + email + " from " + publicIP +
		":51000.</Message><Resource>/e2e-images/</Resource><RequestId>a1b2</RequestId></Error>"
	out, err = s.Body("application/xml", []byte(errBody))
	require.NoError(t, err)
	require.Equal(t, "<Error><Code>AccessDenied</Code><Message>Access Denied for user1@example.com from 198.18.0.1"+
		":51000.</Message><Resource>/e2e-images/</Resource><RequestId>a1b2</RequestId></Error>", string(out))

	require.Equal(t, "key REDACTED refused", s.Text("key "+apiKey+" refused"), "the caller's secrets are replaced anywhere")
	s.AddSecret("opaque-token-0123")
	require.Equal(t, "token REDACTED", s.Text("token opaque-token-0123"), "and so are secrets added later")
	for _, keep := range []string{
		"served by 127.0.0.1:8080 and [::1]",
		"2024-05-29T10:01:02.123456-06:00",
		"crn:v1:bluemix:public:cloud-object-storage:global:a/not-an-account:1234abcd-0000-1111-2222-333344445555::",
		"version 22.04 of UBUNTU_22_64",
		"12:30 and 10:20:30",
	} {
		require.Equal(t, keep, s.Text(keep))
	}
	require.Equal(t, "at 198.18.0.2.", s.Text("at "+privateIP+"."), "a full stop after an address is kept")
}

func TestNonJSONBodyThatLooksLikeJSON(t *testing.T) {
	t.Parallel()
	s := New()
	out, err := s.Body("application/json", []byte(`{"truncated": "`+email))
	require.NoError(t, err)
	require.Equal(t, `{"truncated": "user1@example.com`, string(out), "an unparsable body is scrubbed as text")
	_, err = s.JSON([]byte(`{"a":1} {"b":2}`))
	require.Error(t, err, "two documents are not one")
	_, err = s.Body("application/octet-stream", []byte{0xff, 0xfe, 0x00})
	require.True(t, errors.Is(err, ErrBinary))
}

func TestJWTInFreeText(t *testing.T) {
	t.Parallel()
	tok := jwt(t, map[string]any{"sub": email, "exp": 1717003600})
	s := New()
	out := s.Text("Authorization: Bearer " + tok)
	mustNotContain(t, out, tok, email)
	require.True(t, strings.HasPrefix(out, "Authorization: Bearer eyJ"))
	require.Equal(t, Redacted, scrubJWT("eyJhbGciOiJIUzI1NiJ9.!!!.sig"), "undecodable claims")
}

package kms

const (
	testAccount  = "0123456789abcdef0123456789abcdef"
	testInstance = "11111111-2222-3333-4444-555555555555"
	testKeyID    = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
	testKPCRN    = "crn:v1:bluemix:public:kms:us-south:a/" + testAccount + ":" + testInstance + ":key:" + testKeyID
	testHPCSCRN  = "crn:v1:bluemix:public:hs-crypto:eu-de:a/" + testAccount + ":" + testInstance + ":key:" + testKeyID
)

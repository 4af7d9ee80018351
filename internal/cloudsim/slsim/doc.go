// Package slsim simulates the SoftLayer REST API (/rest/v3.1) of IBM Cloud
// classic infrastructure closely enough that github.com/softlayer/softlayer-go
// talks to it unchanged, including the backplane that imports End-to-End
// encrypted VHD images.
package slsim

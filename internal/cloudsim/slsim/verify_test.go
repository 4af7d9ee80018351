package slsim_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/e2eimage/e2eimage/internal/cloudsim/slsim"
	"github.com/e2eimage/e2eimage/internal/testenv"
	"github.com/e2eimage/e2eimage/vhdcrypt"
)

// encryptWith encrypts raw with the module's encryptor. Disks without a
// partition table are let through (WithoutPartitionTable): these tests are
// about the simulator's own refusal of them, not the encryptor's.
func encryptWith(t *testing.T, raw, key []byte, opts ...vhdcrypt.Option) []byte {
	t.Helper()
	dek, err := vhdcrypt.DEKFromBytes(key)
	require.NoError(t, err)
	var out bytes.Buffer
	opts = append([]vhdcrypt.Option{vhdcrypt.WithoutPartitionTable()}, opts...)
	require.NoError(t, vhdcrypt.EncryptImage(context.Background(), &out, bytes.NewReader(raw), dek, opts...))
	return out.Bytes()
}

// TestImportAcceptsAnyStoredNonce imports images whose key hash uses the
// zero nonce (what vhd-util copy writes and IBM's procedure checks) and
// other nonces (tapdisk hashes with whatever nonce the image holds): all are
// accepted with the right DEK and refused with another.
func TestImportAcceptsAnyStoredNonce(t *testing.T) {
	t.Parallel()
	w := newWorld(t, fast)
	w.kms.addKey(t, "root-1")
	crk := w.keyCRN("kms", kpInstance, "root-1")
	var chosen [32]byte
	for i := range chosen {
		chosen[i] = byte(0xA0 + i)
	}
	raw := linuxDisk(t)
	type imp struct {
		name, wdek, want string
	}
	var imps []imp
	for _, tc := range []struct {
		name string
		size int
		opts []vhdcrypt.Option
	}{
		{"zero-nonce", 32, nil},
		{"random-nonce", 64, []vhdcrypt.Option{vhdcrypt.WithRandomNonce()}},
		{"chosen-nonce", 32, []vhdcrypt.Option{vhdcrypt.WithNonce(chosen)}},
	} {
		dek := randomDEK(tc.size)
		w.s3.put("images", tc.name+".vhd", encryptWith(t, raw, dek, tc.opts...))
		imps = append(imps,
			imp{tc.name, w.kms.wrap(t, "root-1", dek), slsim.TemplateStatusActive},
			imp{tc.name, w.kms.wrap(t, "root-1", randomDEK(tc.size)), slsim.ReasonDEKMismatch})
	}
	ids := make([]int, len(imps))
	for i, im := range imps {
		ids[i] = w.createImport(t, importSpec{uri: "cos://us-south/images/" + im.name + ".vhd", crk: crk, wdek: im.wdek})
	}
	for i, im := range imps {
		g := w.waitImport(t, ids[i])
		if im.want == slsim.TemplateStatusActive {
			require.Equal(t, im.want, *g.Status.KeyName, "%s: %s", im.name, deref(g.Status.Description))
			continue
		}
		require.True(t, strings.HasPrefix(deref(g.Status.Description), im.want), "%s with another DEK: %s", im.name, deref(g.Status.Description))
	}
}

// TestImportReferenceImages imports the reference toolchain's encrypted
// images. Their disk (plain.raw) has no partition table, so the import ends
// with that reason, which the backplane reaches only after the key hash
// accepted the DEK: vhd-util copy's zero nonce and a tapdisk-written image's
// non-zero nonce both check.
func TestImportReferenceImages(t *testing.T) {
	t.Parallel()
	w := newWorld(t, fast)
	w.kms.addKey(t, "root-1")
	crk := w.keyCRN("kms", kpInstance, "root-1")
	key32, key64 := testenv.RefFile(t, "key32.bin"), testenv.RefFile(t, "key64.bin")
	cases := []struct {
		file string
		dek  []byte
		want string
	}{
		{"enc-qemu-k32.vhd", key32, slsim.ReasonNoPartitionTable},
		{"enc-qemu-k64.vhd", key64, slsim.ReasonNoPartitionTable},
		{"enc-tap-sparse-k64.vhd", key64, slsim.ReasonNoPartitionTable},
		{"enc-qemu-k64.vhd", randomDEK(64), slsim.ReasonDEKMismatch},
		{"src-tap-sparse.vhd", key64, slsim.ReasonNotEncrypted},
	}
	ids := make([]int, len(cases))
	for i, tc := range cases {
		w.s3.put("images", tc.file, testenv.RefFile(t, tc.file))
		ids[i] = w.createImport(t, importSpec{uri: "cos://us-south/images/" + tc.file, crk: crk, wdek: w.kms.wrap(t, "root-1", tc.dek)})
	}
	for i, tc := range cases {
		g := w.waitImport(t, ids[i])
		desc := deref(g.Status.Description)
		require.True(t, strings.HasPrefix(desc, tc.want), "%s: %s, want %s", tc.file, desc, tc.want)
	}
}

package slsim

// ContractRow is one status, transaction name, placement rule or error the
// simulator uses for image templates and orders, with its provenance.
type ContractRow struct {
	// Kind is "status", "transaction", "placement", "export", "error" or
	// "image" (a check of the imported image's contents).
	Kind string
	// Name is the value the simulator shows (a status or transaction
	// name, an exception code) or a short name of the rule.
	Name string
	// Rule says what the simulator does with it.
	Rule string
	// Source is made of parts separated by "; ", each starting with
	// "documented: <where>", "inferred: <what>" or "invented" (with why,
	// when it helps); the first part says which kind the row is. A
	// documented part quotes its source ("...") at least once, and each
	// quote appears verbatim in classic/testdata/contract/README.md,
	// section "Quoted sources" (TestContractQuotes). Whatever goes beyond a
	// quote is in an inferred or invented part.
	Source string
}

// Contract lists every template and order behaviour of the simulator with
// its provenance. README.md carries the same table.
var Contract = []ContractRow{
	{"status", "Active", "name of the only status a template can be provisioned from; shown by the parent from createFromIcos on, also while its child imports",
		"documented: SLDN SoftLayer_Virtual_Guest_Block_Device_Template_Group_Status (\"For a provision, the image template will need to have a status of 'Active'\"); inferred: that the parent says Active from createFromIcos on and while its child still imports: softlayer-cli's fixture SoftLayer_Virtual_Guest_Block_Device_Template_Group/getObject.json shows a parent with only status.name Active next to a finished import (child transactionId null, disk space set), and no source shows a template during an import"},
	{"status", "ACTIVE", "key name of Active", "invented: SLDN documents no key names"},
	{"status", "Deprecated", "not used by the simulator", "documented: SLDN ..._Group_Status (\"For an operating system reload, the image template will need to have a status of 'Active' or 'Deprecated'\")"},
	{"status", "ERROR", "key name (name Error) of a template whose import failed; status.description holds the reason; with Config.DeleteFailedImports the template is removed instead",
		"invented: IBM documents no status or signal for a failed import"},
	{"status", "PENDING", "no longer used: an import in progress is a child's transaction", "invented (removed)"},
	{"transaction", "children[].transaction", "an import in progress is a transaction (transactionId, transaction) on the child in the import data center; the parent has none; block devices appear on the child (and the parent) when it ends",
		"documented: SLDN property transactionId (\"This will only be set when there is a transaction being performed on the block device template group\"); the fields transactionId and statusId on children[] in softlayer-cli's fixture getObject.json, and softlayer-python's image detail reading transactions from children[].transaction; inferred: that an import is a transaction on the child in the import data center, that the parent has none, and when block devices appear"},
	{"transaction", TxImportQueued + ", " + TxImportAuth + ", " + TxImportDownload + ", " + TxImportVerify + ", " + TxImportKey + ", " + TxImportCopy,
		"transaction status names of an import's steps, each with a friendlyName", "invented: IBM documents no transaction status names"},
	{"transaction", TxCopy, "transaction of a child that addLocations creates; lasts Config.CopyDuration", "invented (name and duration); documented: SLDN addLocations (\"This method will create transaction(s) to add available locations\")"},
	{"transaction", TxExport, "transaction on the parent while copyToIcos runs", "invented (name); documented: SLDN copyToIcos (\"Create a transaction to export/copy a template to an ICOS\")"},
	{"transaction", TxDelete, "the transaction deleteObject returns", "invented (name)"},
	{"placement", "import data center", "an import lands only in its region's import data center: us-south dal13, us-east wdc07, eu-gb lon02, eu-de fra02",
		"documented: image-templates import-image.md, Table 1, row Location (\"US-South (DAL13), US-East (WDC07), EU-Great Britain (LON02), EU-Germany (FRA02)\"); inferred: the COS region codes of those names, and that an import lands only there"},
	{"placement", "jp-tok tok02, au-syd syd04", "import data centers of AP-Japan and AU-Sydney", "invented: the docs name the regions but no data center"},
	{"placement", "addLocations", "copies a template whose import is done to other data centers as new children; getStorageLocations lists every configured data center",
		"documented: image-templates import-image.md (\"you can move it to another data center\"), SLDN addLocations/getStorageLocations, softlayer-cli image datacenter; invented: which data centers are listed, the refusals and their messages"},
	{"placement", "order where a copy is", "createObject, generateOrderTemplate, verifyOrder and placeOrder need a child in the order's data center with no transaction and its disks in place",
		"documented: SLDN Managing Image Templates, Update Locations (\"This will enable an Image Template in a selected datacenter\"; useful \"if you need to provision anything with this template\" there); inferred: that the four calls need the copy, and that it must have no transaction and its disks"},
	{"error", ExceptionOrderInvalidLocation, "an order in a data center without a copy: \"The location provided for this order is invalid.\" followed by the simulator's explanation",
		"documented: the code and first sentence as the real API answers an order in a location that does not offer it (\"The location provided for this order is invalid.\"; softlayer-python issues #1632, #2127; IBM Cloud Kubernetes Service troubleshooting); invented: that it answers so for a template's location, and the rest of the message"},
	{"error", "SoftLayer_Exception_Public (active transaction)", "an order while the copy in the data center still has a transaction", "invented"},
	{"export", "<name>-<n>.vhd", "copyToIcos of file name image.vhd writes image-0.vhd; a file name without .vhd gets -0.vhd appended",
		"documented: image-templates export-image-ibm-cos.md (\"if your image file is named image.vhd, the first block device is exported as image-0.vhd\"); invented: the name without .vhd"},
	{"export", "encrypted export", "encrypted templates can be exported; the simulator writes the encrypted object it imported",
		"documented: export-image-ibm-cos.md (\"a preexisting, private standard image template, or an encrypted image template\"); invented: what bytes are written"},
	{"image", ReasonNoPartitionTable, "the import fails when the decrypted disk has neither a valid MBR nor a valid GPT (primary or backup header, CRC32s checked)",
		"inferred: a disk of one of the systems import-image.md lists (\"VHD and VMDK image imports are restricted to the following 64-bit operating systems\") has an MBR or a GPT; invented: that the import checks it, when, and the message"},
	{"image", ReasonNoRootFS, "the import fails when no partition holds a Linux root: an ext2/3/4 file system with /etc, or a file system the simulator recognises without reading it (XFS, Btrfs, LVM2, LUKS, NTFS, BitLocker); the detail lists what each partition holds",
		"documented: image-templates import-image.md (\"VHD and VMDK image imports are restricted to the following 64-bit operating systems\"); inferred: that such a system has a Linux root file system; invented: the check, its file-system signatures and the message"},
	{"image", ReasonNoCloudInit, "a cloud-init enabled import (every encrypted one) fails when its ext4 root has neither an installed cloud-init in /var/lib/dpkg/status nor a cloud_init-VERSION.dist-info or .egg-info under /usr/lib/python3*/{dist,site}-packages (or /usr/local/lib)",
		"documented: image-templates import-image.md (\"Make sure that your image is cloud-init enabled.\") and create-encrypted-image.md (\"Cloud-init enabled.\"); invented: where the simulator looks, that the import checks it, and the message"},
	{"image", ReasonCloudInitTooOld, "the import fails when the recorded cloud-init version (epoch and Debian revision dropped) is older than 0.7.7",
		"documented: image-templates import-image.md (\"Linux images require Cloud-init version 0.7.7 or greater.\"); invented: that the import checks it, the version comparison and the message"},
	{"image", ReasonNoConfigDrive, "the import fails when the datasource_list in effect (the last one set in /etc/cloud/cloud.cfg, then /etc/cloud/cloud.cfg.d/*.cfg in name order) names neither ConfigDrive nor IBMCloud; no datasource_list means every data source",
		"documented: image-templates import-image.md (cloud-init images use the Config drive \"Version 2 data source to supply the metadata\"); inferred: from cloud-init's cloudinit/sources/DataSourceIBMCloud.py, that IBMCloud (SoftLayer) reads the same config disk; invented: that the import checks it, accepting IBMCloud, and the message"},
	{"image", "not checked", "where the simulator cannot read what it would check (an XFS, Btrfs, LVM or LUKS root; an ext4 its reader cannot read; cloud-init records on a /var or /usr that /etc/fstab mounts from elsewhere; its read bounds), the import goes on and TemplateInfo.ImageCheck starts with \"not checked: \"; otherwise with \"checked: \"",
		"invented: the simulator does not invent a failure for what it cannot see"},
	{"image", "Windows", "a Windows import (WIN_* codes) is checked for a partition table only; cloudbase-init is not looked for (not checked)",
		"documented: image-templates import-image.md (\"Windows images require the Cloudbase-init metadata service\"); invented: that the simulator does not look for it"},
}

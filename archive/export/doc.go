// Package export writes, checks and imports air-gapped exports of an
// archive: a directory (or one tar stream) on removable media holding
// everything needed to verify and restore the selected data with no
// network and no access to the source archive.
//
//	rep, err := export.Run(ctx, export.Options{Source: s3store, Dir: "/mnt/usb/kafka", SignKey: priv})
//	vr, err := export.Verify(ctx, fileStore, export.VerifyOptions{PublicKey: pub})
//	ir, err := export.Import(ctx, export.ImportOptions{From: fileStore, To: otherS3})
//
// An export directory is itself a file archive (archive/file), so `amber
// ls` and `amber restore` read it as they read the source, plus one
// manifest per export run (format version 1; its constants are part of
// the format):
//
//	DIR/
//	├── v1/seg/<writer>/<seq>.seg    archive objects (docs/FORMAT.md), each
//	├── v1/idx/<writer>/<seq>.idx    written once, never replaced
//	└── manifest/
//	    ├── 00000001-20261121T050306Z-3f9a…e1.json  run 1: the files it added
//	    ├── 00000001-20261121T050306Z-3f9a…e1.sig   its ed25519 signature
//	    └── 00000002-20261122T050211Z-b07c…4d.json  run 2: previous = run 1's
//	                                                path and SHA-256
//	    (<run>-<UTC time>-<first 16 hex digits of the manifest's SHA-256>)
//
//	manifest/<run>.json ─previous─► manifest/<run-1>.json ─► … ─► run 1 (null)
//	     │ files: [{path, size, sha256}, …]
//	     └ <run>.sig = ed25519(private key, bytes of <run>.json)
//
// Without a selection every upload (segment and index) is copied byte for
// byte under its own key, so a further run recognises what is there by
// name and copies only newer uploads. With --topic, --since or --until an
// upload wholly inside the selection is still copied byte for byte; one
// partly inside is rewritten as a derived upload holding only the
// selected batches and events (archive.SubsetUpload), under writer id
// archive.DerivedWriterID(source writer, selection) and the source's
// upload number. The rules for which events go with a selection are on
// archive.Selection.Event.
//
// Nothing in an export is ever rewritten: files first, then the run's
// manifest listing them, then its signature. Verify checks that the union
// of the manifests lists exactly the files present, with their sizes and
// SHA-256, that the chain is whole and every signature matches, and then
// reads the files as an archive (archive.VerifyIntegrity).
package export

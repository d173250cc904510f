// One PDF holding every page of an order's tickets, in seat order (the caller sorts).
import { PDFDocument } from 'pdf-lib';

export async function mergePdfs(pdfs: Uint8Array[]): Promise<Uint8Array> {
  const merged = await PDFDocument.create();
  for (const bytes of pdfs) {
    const doc = await PDFDocument.load(bytes, { ignoreEncryption: true, updateMetadata: false });
    const pages = await merged.copyPages(doc, doc.getPageIndices());
    for (const page of pages) merged.addPage(page);
  }
  return merged.save();
}

/** A name safe in a Content-Disposition header and on any file system. */
export function pdfFileName(...parts: string[]): string {
  return `${parts.join('-').replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^[._]+/, '').slice(0, 120) || 'tickets'}.pdf`;
}

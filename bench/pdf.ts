// Real ticket-like PDFs of a chosen size for the fulfilment workload: pages carrying an
// uncompressed random-noise image, so the bytes are incompressible content pdf-lib has to
// load and walk like a scanned ticket, not padding after %%EOF.
import { randomBytes } from 'node:crypto';
import { concatTransformationMatrix, drawObject, PDFDocument, popGraphicsState, pushGraphicsState, StandardFonts } from 'pdf-lib';

const IMAGE_SIDE = 640; // 640 x 640 RGB = 1.2 MB of noise per page

/** A PDF of about `targetBytes` (to within half a page image). */
export async function makeTicketPdf(targetBytes: number, label: string): Promise<Buffer> {
  const doc = await PDFDocument.create();
  const font = await doc.embedFont(StandardFonts.Helvetica);
  const perImage = IMAGE_SIDE * IMAGE_SIDE * 3;
  const pages = Math.max(1, Math.round(targetBytes / perImage));
  for (let i = 0; i < pages; i++) {
    const page = doc.addPage([IMAGE_SIDE + 40, IMAGE_SIDE + 80]);
    const image = doc.context.register(
      doc.context.stream(randomBytes(perImage), {
        Type: 'XObject',
        Subtype: 'Image',
        Width: IMAGE_SIDE,
        Height: IMAGE_SIDE,
        ColorSpace: 'DeviceRGB',
        BitsPerComponent: 8,
      }),
    );
    const name = page.node.newXObject('Noise', image);
    page.pushOperators(
      pushGraphicsState(),
      concatTransformationMatrix(IMAGE_SIDE, 0, 0, IMAGE_SIDE, 20, 20),
      drawObject(name),
      popGraphicsState(),
    );
    page.drawText(`${label} page ${i + 1}/${pages}`, { x: 20, y: IMAGE_SIDE + 40, size: 14, font });
  }
  return Buffer.from(await doc.save({ useObjectStreams: false }));
}
